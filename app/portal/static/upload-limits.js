// Checks the files chosen in a form against the server's limits before the form is sent.
// The server refuses a request larger than its limit without reading the form, and the agent
// would lose every value typed. So the page keeps the form and names the limit instead.
(function () {
  "use strict";
  var script = document.currentScript;
  var input = document.getElementById(script.getAttribute("data-input"));
  var notice = document.getElementById(script.getAttribute("data-notice"));
  if (!input || !notice) { return; }
  var totalLimit = Number(script.getAttribute("data-total-limit"));
  var fileLimit = Number(script.getAttribute("data-file-limit"));
  var countLimit = Number(script.getAttribute("data-count-limit"));
  // The request also carries the typed fields and a multipart header per part: about 3 KB with a
  // short subject, so the files get the limit less this margin.
  var requestMargin = 64 * 1024;

  function message() {
    var files = input.files || [];
    var total = 0;
    for (var index = 0; index < files.length; index += 1) {
      if (files[index].size > fileLimit) {
        var name = files[index].name;
        // A function, so that "$&" or "$'" in a file name is not read as a replacement pattern.
        return script.getAttribute("data-file-message").replace("__NAME__", function () { return name; });
      }
      total += files[index].size;
    }
    if (files.length > countLimit) { return script.getAttribute("data-count-message"); }
    if (total > totalLimit - requestMargin) { return script.getAttribute("data-total-message"); }
    return "";
  }

  function check() {
    var text = message();
    input.setCustomValidity(text);
    notice.textContent = text;
    notice.hidden = text === "";
  }

  input.addEventListener("change", check);
  // The registration form has novalidate, so the browser sends it even with a custom validity message.
  if (input.form) {
    input.form.addEventListener("submit", function (event) {
      check();
      if (!notice.hidden) {
        event.preventDefault();
        notice.scrollIntoView({block: "center"});
      }
    });
  }
  check();
}());
