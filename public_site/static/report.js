/* The report form, with JavaScript: "Text me a code" asks for the code in place, without
   sending the page. Without JavaScript (or if this fails) the button posts the form, and the
   server shows it again with the code field open: nothing here is needed. */
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  var button = document.getElementById("send_code");
  if (!form || !button || !window.fetch || !window.FormData) {
    return;
  }
  var status = document.getElementById("code-status");
  var codeField = document.getElementById("code-field");
  var phone = form.elements.phone;
  var inPlace = true;

  function show(message, sent) {
    status.textContent = message;
    status.className = sent ? "hint" : "field-error";
    phone.setAttribute("aria-invalid", sent ? "false" : "true");
    if (sent) {
      codeField.hidden = false;
      form.elements.code.focus();
    }
  }

  function postThePage() {
    // The plain form post does the same step and shows the page again.
    inPlace = false;
    button.disabled = false;
    button.click();
  }

  button.addEventListener("click", function (event) {
    if (!inPlace) {
      return;
    }
    event.preventDefault();
    var data = new FormData();
    data.append("csrf_token", form.elements.csrf_token.value);
    data.append("phone", phone.value);
    data.append("send_code", button.value);
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") !== 0) {
          throw new Error("not an answer of this step");
        }
        return response.json();
      })
      .then(function (answer) {
        button.disabled = false;
        show(answer.message, answer.sent);
      })
      .catch(postThePage);
  });
})();
