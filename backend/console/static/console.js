// The console's live views: each [data-live] element follows a server-sent event stream
// and, when its topic changes, fetches its HTML fragment again. Nothing else runs here.
"use strict";

(function () {
  const feed = document.getElementById("feed");

  function showFeed(ok) {
    if (!feed) return;
    feed.hidden = false;
    feed.textContent = ok ? feed.dataset.ok : feed.dataset.down;
    feed.classList.toggle("down", !ok);
  }

  function scrollDown(element) {
    const list = element.querySelector("#" + element.dataset.scroll);
    if (list) list.scrollTop = list.scrollHeight;
  }

  function follow(element) {
    const source = new EventSource(
      "/console/events?topic=" + encodeURIComponent(element.dataset.live)
    );
    let loading = null;
    async function refresh() {
      const response = await fetch(element.dataset.fragment, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (response.status === 401) {
        window.location.assign("/console/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (response.ok) {
        element.innerHTML = await response.text();
        if (element.dataset.scroll) scrollDown(element);
        element.dispatchEvent(new CustomEvent("console:refreshed", { bubbles: true }));
      }
    }
    source.addEventListener("change", function () {
      // One fetch at a time; a change during a fetch fetches once more afterwards.
      loading = (loading || Promise.resolve()).then(refresh).catch(function () {});
    });
    source.addEventListener("open", function () { showFeed(true); });
    source.addEventListener("error", function () { showFeed(false); });
  }

  document.querySelectorAll("[data-live]").forEach(function (element) {
    if (element.dataset.scroll) scrollDown(element);
    follow(element);
  });
})();
