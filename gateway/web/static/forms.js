// What an admin typed into a form survives the session ending before they pressed Save.
//
// A form posted after the session ended is not sent (the server cannot take it: no session, no
// CSRF token); the server answers with the login page, marked data-session-ended, and after the
// login goes back to the form's page. Each form posted is kept here, in this tab's sessionStorage,
// until the next page: a page other than the login forgets it, and puts it back into the same form
// only when the login page said the session had ended. Never a password, nor the CSRF token (the
// new page's is the session's). Without script the login page still says to send the form again.
// A refused login's address is put back the same way (the server's page is the same for every
// failure, whatever was typed).
(function () {
  "use strict";
  var KEY = "smsgw.typed";
  var LOGIN = "smsgw.login";
  var store;
  try {
    store = window.sessionStorage;
    store.getItem(KEY);
  } catch (e) {
    return; // storage off: the page works as without script
  }

  // The page's path and query, without ?done= (the notice of a save, not the page).
  function page(loc) {
    var params = new URLSearchParams(loc.search);
    params.delete("done");
    var query = params.toString();
    return loc.pathname + (query ? "?" + query : "");
  }

  // Which form: where it posts and its hidden keys (a row's email or number), never the token or
  // the stamp of what it was loaded with.
  function sign(form) {
    var parts = [form.getAttribute("action") || ""];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.type === "hidden" && el.name && el.name !== "csrf" && el.name !== "loaded") {
        parts.push(el.name + "=" + el.value);
      }
    });
    return parts.join("&");
  }

  // The fields kept: what was typed or chosen, and the stamp (so that a change made meanwhile by
  // someone else is still found when the form is sent again); no password, no token.
  function kept(el) {
    if (!el.name || el.name === "csrf" || el.type === "password" || el.type === "file") {
      return false;
    }
    if (el.type === "hidden") {
      return el.name === "loaded";
    }
    return ["submit", "button", "reset", "image"].indexOf(el.type) < 0 && el.tagName !== "BUTTON";
  }

  function toLogin(form) {
    var action = form.getAttribute("action") || "";
    return action === "/login" || action === "/logout";
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
        return;
      }
      if ((form.method || "").toLowerCase() !== "post" || toLogin(form)) {
        return;
      }
      var fields = [];
      Array.prototype.forEach.call(form.elements, function (el) {
        if (kept(el)) {
          fields.push([el.name, el.value, el.checked === true]);
        }
      });
      try {
        store.setItem(
          KEY,
          JSON.stringify({ page: page(window.location), sign: sign(form), fields: fields, ended: false })
        );
      } catch (e) {
        // full or refused: the form is sent all the same
      }
    },
    true
  );

  function restore(form, fields) {
    var seen = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!kept(el)) {
        return;
      }
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = fields.some(function (f) {
          return f[0] === el.name && f[1] === el.value && f[2];
        });
        return;
      }
      var same = fields.filter(function (f) {
        return f[0] === el.name;
      });
      var n = seen[el.name] || 0;
      seen[el.name] = n + 1;
      if (n < same.length) {
        el.value = same[n][1];
      }
    });
  }

  function note(main, id, text, role) {
    var p = document.createElement("p");
    p.id = id;
    p.className = role === "status" ? "done" : "hint";
    if (role) {
      p.setAttribute("role", role);
    }
    p.textContent = text;
    main.insertBefore(p, main.firstChild);
  }

  function loaded() {
    var raw = store.getItem(KEY);
    var typed = null;
    try {
      typed = raw ? JSON.parse(raw) : null;
    } catch (e) {
      typed = null;
    }
    var main = document.querySelector("main");
    var login = document.querySelector('form[action="/login"]');
    if (login) {
      var email = login.elements.email;
      var given = store.getItem(LOGIN);
      if (given && email && !email.value && document.getElementById("error")) {
        email.value = given; // the address of the login refused, never its password
      }
      // Kept through the login (a mistyped password too); said only when the page says the session
      // ended, and only then put back after it.
      if (typed && login.hasAttribute("data-session-ended")) {
        typed.ended = true;
        store.setItem(KEY, JSON.stringify(typed));
      }
      if (typed && typed.ended && main) {
        note(
          main.querySelector("form") || main,
          "kept",
          "What you typed is kept in this browser and put back into the form after you log in;" +
            " a password is not: type it again.",
          null
        );
      }
      return;
    }
    store.removeItem(KEY);
    store.removeItem(LOGIN);
    if (!typed || !typed.ended || typed.page !== page(window.location)) {
      return;
    }
    var forms = Array.prototype.filter.call(document.forms, function (f) {
      return sign(f) === typed.sign;
    });
    if (forms.length !== 1 || !main) {
      return;
    }
    restore(forms[0], typed.fields);
    forms[0].setAttribute("data-restored", "");
    note(
      main,
      "restored",
      "Your session had ended before the form was sent: what you typed is back in it (a password is" +
        " not). Check it and send it again.",
      "status"
    );
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", loaded);
  } else {
    loaded();
  }
})();
