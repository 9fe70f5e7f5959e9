"""Paginated lists: a page number beyond the end shows the last page, not « Page introuvable »
(a bookmarked page 12 of a list that shrank to 3 pages, a hand-typed ``?page=9999``)."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet


class LastPageMixin:
    """For every ``ListView``/``FilterView`` with ``paginate_by`` (a test checks they all have
    it): Django's ``Paginator.get_page`` gives the last page for a number too large and the
    first for one that is not a number."""

    def paginate_queryset(
        self, queryset: QuerySet, page_size: int
    ) -> tuple[Paginator, Page, list, bool]:
        paginator = self.get_paginator(
            queryset,
            page_size,
            orphans=self.get_paginate_orphans(),
            allow_empty_first_page=self.get_allow_empty(),
        )
        number = self.kwargs.get(self.page_kwarg) or self.request.GET.get(self.page_kwarg)
        page = paginator.get_page(number)
        return paginator, page, page.object_list, page.has_other_pages()
