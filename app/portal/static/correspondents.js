// Correspondent picker of the registration form: searches the directory as the
// agent types and fills the hidden correspondent id.  No external library.
(function () {
  "use strict";
  var script = document.currentScript;
  var searchUrl = script.getAttribute("data-search-url");
  var noResult = script.getAttribute("data-no-result");
  var input = document.getElementById("correspondent_search");
  var hidden = document.getElementById("correspondent_id");
  var results = document.getElementById("correspondent-results");
  var picked = document.getElementById("correspondent-picked");
  var newBox = document.getElementById("correspondent-new");
  if (!input || !hidden || !results) { return; }
  var timer = null;
  var lastQuery = "";

  function clearResults() {
    while (results.firstChild) { results.removeChild(results.firstChild); }
  }

  function pick(id, name) {
    hidden.value = String(id);
    picked.querySelector(".picked-name").textContent = name;
    picked.hidden = false;
    if (newBox) { newBox.hidden = true; }
    clearResults();
  }

  function showResults(items) {
    clearResults();
    if (!items.length) {
      var empty = document.createElement("div");
      empty.className = "list-group-item text-muted";
      empty.textContent = noResult;
      results.appendChild(empty);
      return;
    }
    items.forEach(function (item) {
      var row = document.createElement("button");
      row.type = "button";
      row.className = "list-group-item correspondent-result";
      row.setAttribute("data-id", item.id);
      var details = [item.email, item.phone, [item.postcode, item.city].filter(Boolean).join(" ")].filter(Boolean).join(" — ");
      row.textContent = item.display_name + (details ? " — " + details : "");
      row.addEventListener("click", function () { pick(item.id, item.display_name); });
      results.appendChild(row);
    });
  }

  function search() {
    var query = input.value.trim();
    if (query.length < 2 || query === lastQuery) { return; }
    lastQuery = query;
    fetch(searchUrl + "?q=" + encodeURIComponent(query), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { results: [] }; })
      .then(function (data) { if (input.value.trim() === query) { showResults(data.results || []); } })
      .catch(function () { clearResults(); });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  document.getElementById("correspondent-clear").addEventListener("click", function () {
    hidden.value = "";
    picked.hidden = true;
    if (newBox) { newBox.hidden = false; }
    input.focus();
  });
  Array.prototype.forEach.call(document.querySelectorAll(".pick-candidate"), function (button) {
    button.addEventListener("click", function () { pick(button.getAttribute("data-id"), button.getAttribute("data-name")); });
  });
})();
