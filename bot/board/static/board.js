// Live updates: the server sends `changed` when a call the member sees gets
// a new event; htmx then re-fetches the live part of the page (#live).
// Without JavaScript the pages still read; they just do not refresh.
(function () {
  "use strict";
  var url = document.body.dataset.events;
  if (!url || !window.EventSource) { return; }
  var source = new EventSource(url);
  source.addEventListener("changed", function () {
    if (window.htmx) { window.htmx.trigger(document.body, "board-changed"); }
  });
  source.addEventListener("signed-out", function () { source.close(); });
})();
