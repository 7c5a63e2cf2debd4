// The examples filter, and the live reload of a served report. No
// network access except, when served, the report's own version URL.
(function () {
  "use strict";
  var select = document.getElementById("group-filter");
  var count = document.getElementById("shown-count");
  var rows = document.querySelectorAll("tr.example");

  function apply(group) {
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var show = group === "" || rows[i].getAttribute("data-group") === group;
      rows[i].hidden = !show;
      if (show) { shown++; }
    }
    count.textContent = shown + " shown";
  }

  function fromHash() {
    var m = /^#group=(.*)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : "";
  }

  select.addEventListener("change", function () {
    apply(select.value);
    history.replaceState(null, "", select.value ? "#group=" + encodeURIComponent(select.value) : location.pathname + location.search);
  });
  var initial = fromHash();
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === initial) { select.value = initial; apply(initial); break; }
  }

  var body = document.body;
  var every = parseFloat(body.getAttribute("data-refresh"));
  var url = body.getAttribute("data-version-url");
  if (every > 0 && url) {
    var version = body.getAttribute("data-version");
    var poll = function () {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.text() : version; }).then(function (v) {
        if (v.trim() !== version) { location.reload(); } else { setTimeout(poll, every * 1000); }
      }, function () { setTimeout(poll, every * 1000); });
    };
    setTimeout(poll, every * 1000);
  }
})();
