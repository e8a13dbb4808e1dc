// A refused login's address is put back into the login form (the server's page is the same for
// every failure, whatever was typed): kept in this tab's sessionStorage from the login's submit to
// the next page, never the password. A form sent after the session ended is kept on the server, for
// its own user's next login, and its page shows it filled in again: no script needed for that.
(function () {
  "use strict";
  var LOGIN = "smsgw.login";
  var store;
  try {
    store = window.sessionStorage;
    store.getItem(LOGIN);
    store.removeItem("smsgw.typed"); // what an older panel kept here, not to linger
  } catch (e) {
    return; // storage off: the page works as without script
  }

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if ((form.getAttribute("action") || "") === "/login" && form.elements.email) {
        try {
          store.setItem(LOGIN, form.elements.email.value);
        } catch (e) {
          // the login goes ahead all the same
        }
      }
    },
    true
  );

  function loaded() {
    var login = document.querySelector('form[action="/login"]');
    if (!login) {
      store.removeItem(LOGIN);
      return;
    }
    var email = login.elements.email;
    var given = store.getItem(LOGIN);
    if (given && email && !email.value && document.getElementById("error")) {
      email.value = given; // the address of the login refused, never its password
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", loaded);
  } else {
    loaded();
  }
})();
