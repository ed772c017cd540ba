// Disables the submit button of a form once the form is on its way, so that a double click sends it
// once. The server also registers a registration form sent twice only once.
(function () {
  "use strict";
  var script = document.currentScript;
  var form = document.getElementById(script.getAttribute("data-form"));
  if (!form) { return; }
  var buttons = form.querySelectorAll("button[type=submit]");
  var labels = Array.prototype.map.call(buttons, function (button) { return button.textContent; });

  function setSending(sending) {
    Array.prototype.forEach.call(buttons, function (button, index) {
      button.disabled = sending;
      button.setAttribute("aria-busy", sending ? "true" : "false");
      button.textContent = sending ? script.getAttribute("data-sending") : labels[index];
    });
  }

  form.addEventListener("submit", function (event) {
    // A listener added before this one, such as the file size check, may have stopped the form.
    if (!event.defaultPrevented) { setSending(true); }
  });
  // Back from the next page, the browser may show this page from its cache with the button disabled.
  window.addEventListener("pageshow", function () { setSending(false); });
}());
