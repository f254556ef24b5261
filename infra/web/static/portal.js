// partnerfleet portal: htmx settings. Every page works without this file (plain forms).
document.addEventListener("DOMContentLoaded", function () {
  if (!window.htmx) { return; }
  // Refusals (4xx) are pages' content too: swap them where they were asked for, so a
  // refused star shows its reason next to its tile. 5xx goes to #messages (server set).
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "5..", swap: true, error: true },
    { code: "...", swap: false }
  ];
  htmx.config.historyCacheSize = 0; // pages carry a CSRF token and personal data
  htmx.config.includeIndicatorStyles = false;
  htmx.config.allowEval = false;
  htmx.config.selfRequestsOnly = true;
});
// After a swap, keep keyboard focus on the control that was used (its new copy).
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail.target;
  if (target && target.id && target.id.indexOf("tile-") === 0) {
    var button = document.querySelector("#" + CSS.escape(target.id) + " form.star button");
    if (button) { button.focus(); }
  }
});
// After a section of a page is swapped (a dashboard's child groups or deletion, a device's
// service levels, the event list), move focus to its refusal if any, else to its heading,
// so a keyboard or screen-reader user is not left on a removed control.
document.addEventListener("htmx:afterSwap", function (event) {
  var sections = ["child-groups", "delete-group", "service-levels", "event-list"];
  var id = event.detail.target && event.detail.target.id;
  if (sections.indexOf(id) < 0) { return; }
  var section = document.getElementById(id);
  if (!section) { return; }
  var focus = section.querySelector("[role=alert]") || section.querySelector("h2");
  if (focus) {
    if (!focus.hasAttribute("tabindex")) { focus.setAttribute("tabindex", "-1"); }
    focus.focus();
  }
});
