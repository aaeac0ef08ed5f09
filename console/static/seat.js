// The seat page, live: server-sent events from /console/seat/live replace the status and the
// live assistant as they change. The case form takes the suggestion only into fields the
// operator has not touched. Without this script the page shows the same as of its load.
(function () {
  "use strict";
  var root = document.getElementById("seat");
  if (!root || !document.getElementById("seat-status") || !window.EventSource) {
    return;
  }
  var entry = root.getAttribute("data-entry") || "";
  var caseNumber = root.getAttribute("data-case") || "";
  var fields = ["summary", "category", "department", "urgency", "place", "deadline"];
  var touched = {};

  fields.forEach(function (name) {
    var element = document.getElementById("seat-case-" + name);
    if (!element) {
      return;
    }
    var mark = function () { touched[name] = true; };
    element.addEventListener("input", mark);
    element.addEventListener("change", mark);
  });

  function replace(id, html) {
    var element = document.getElementById(id);
    if (element && typeof html === "string") {
      element.innerHTML = html;
    }
  }

  function prefill(values) {
    fields.forEach(function (name) {
      var element = document.getElementById("seat-case-" + name);
      if (element && !touched[name] && Object.prototype.hasOwnProperty.call(values, name)) {
        // A suggestion the form cannot take (the desk itself, when the classifier is unsure)
        // leaves the list on its "choose" line rather than blank.
        if (element.tagName === "SELECT" &&
            !Array.prototype.some.call(element.options, function (o) { return o.value === values[name]; })) {
          return;
        }
        element.value = values[name];
      }
    });
    var suggested = document.getElementById("seat-case-suggested");
    if (suggested && values.suggested) {
      suggested.value = values.suggested;
    }
  }

  function countdown() {
    var elements = document.querySelectorAll("[data-countdown-until]");
    Array.prototype.forEach.call(elements, function (element) {
      var until = Date.parse(element.getAttribute("data-countdown-until"));
      if (!isNaN(until)) {
        element.textContent = String(Math.max(0, Math.round((until - Date.now()) / 1000)));
      }
    });
  }
  window.setInterval(countdown, 1000);

  var source = new EventSource(root.getAttribute("data-live-url"));
  source.addEventListener("seat", function (message) {
    var data = JSON.parse(message.data);
    if (!data || data.seat === null) {
      source.close();
      return;
    }
    var newEntry = data.entry === null || data.entry === undefined ? "" : String(data.entry);
    var newCase = data.case || "";
    if (newEntry !== entry || newCase !== caseNumber) {
      // Another call, or the case is open: the forms change, so load the page afresh.
      source.close();
      window.location.reload();
      return;
    }
    replace("seat-status", data.status_html);
    replace("seat-live", data.live_html);
    if (data.prefill) {
      prefill(data.prefill);
    }
    root.setAttribute("data-updated", String(Date.now()));
  });
})();
