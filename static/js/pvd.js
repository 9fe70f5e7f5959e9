// Behaviour of the portal's own markup, in a static file: the Content-Security-Policy
// refuses inline scripts and onclick attributes.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-pvd-dismiss]");
  if (button) {
    button.closest(".fr-alert").remove();
  }
});
