/* Contact hub form embed: sends a site's existing form to the hub without a page reload.
 *
 * <form data-hub-form> ... </form>
 * <script src="https://hub.example/forms/CHANNEL/embed.js" defer></script>
 *
 * Any form with a data-hub-form attribute (or the selector given in the script tag's
 * data-selector) is posted with fetch. One Idempotency-Key is kept per filled-in form, so
 * a double click or a retry after a network error creates one lead interaction, not two.
 * The form gets data-hub-state="sending|sent|error" and fires hub:sent / hub:error events;
 * an element with data-hub-message inside the form receives a short status text.
 */
(function () {
  "use strict";
  var ENDPOINT = __HUB_ENDPOINT__;
  var CHANNEL = __HUB_CHANNEL__;
  var script = document.currentScript;
  var selector = (script && script.getAttribute("data-selector")) || "form[data-hub-form]";
  var texts = {
    sending: (script && script.getAttribute("data-text-sending")) || "Sending…",
    sent: (script && script.getAttribute("data-text-sent")) || "Thank you! We will be in touch.",
    error: (script && script.getAttribute("data-text-error")) || "Could not send the form. Please try again."
  };

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function say(form, state, detail) {
    form.setAttribute("data-hub-state", state);
    var box = form.querySelector("[data-hub-message]");
    if (box) { box.textContent = detail || texts[state] || ""; }
  }

  function attach(form) {
    if (form.__hubAttached) { return; }
    form.__hubAttached = true;
    var key = newKey();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.getAttribute("data-hub-state") === "sending") { return; }
      say(form, "sending");
      // Where the lead came from: this page (its utm_* parameters with it) and the page
      // that brought the visitor here.
      var data = new FormData(form);
      data.set("_page", location.href);
      if (document.referrer) { data.set("_referrer", document.referrer); }
      fetch(ENDPOINT, {
        method: "POST",
        body: data,
        mode: "cors",
        credentials: "omit",
        headers: { "Accept": "application/json", "Idempotency-Key": key }
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var message = body && body.error && body.error.message;
            throw new Error(message || ("HTTP " + response.status));
          }
          say(form, "sent");
          key = newKey();
          form.reset();
          form.dispatchEvent(new CustomEvent("hub:sent", { detail: body, bubbles: true }));
        });
      }).catch(function (error) {
        say(form, "error", texts.error);
        form.dispatchEvent(new CustomEvent("hub:error", {
          detail: { message: String(error && error.message), channel: CHANNEL }, bubbles: true
        }));
      });
    });
  }

  function scan() {
    var forms = document.querySelectorAll(selector);
    for (var i = 0; i < forms.length; i++) { attach(forms[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scan);
  } else {
    scan();
  }
})();
