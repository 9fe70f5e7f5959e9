from django import template

from pvd.french import euros

register = template.Library()

# The amounts of pages, PDFs and exports are written by one function (pvd/french.py).
register.filter("euros", euros)
