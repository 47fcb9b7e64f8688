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

  function scrollList(element) {
    return element.dataset.scroll ? element.querySelector("#" + element.dataset.scroll) : null;
  }

  function nearBottom(list) {
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  function scrollDown(element) {
    const list = scrollList(element);
    if (list) list.scrollTop = list.scrollHeight;
  }

  // The page's forms fit who holds the conversation; when that changes elsewhere (another
  // agent claims it, it is closed) the page is loaded again, unless a reply is being typed.
  function holderChanged(element) {
    const holder = element.querySelector("[data-holder]");
    const typed = document.getElementById("reply-text");
    return holder && element.dataset.holder !== undefined &&
      holder.dataset.holder !== element.dataset.holder && !(typed && typed.value.trim());
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
      if (response.status === 403) {
        // No longer this agent's to read (a colleague claimed it): the page says why.
        window.location.reload();
        return;
      }
      if (response.ok) {
        const follow = nearBottom(scrollList(element));
        element.innerHTML = await response.text();
        if (holderChanged(element)) {
          window.location.reload();
          return;
        }
        if (follow) scrollDown(element);
        element.dispatchEvent(new CustomEvent("console:refreshed", { bubbles: true }));
      }
    }
    source.addEventListener("change", function () {
      // One fetch at a time; a change during a fetch fetches once more afterwards.
      loading = (loading || Promise.resolve()).then(refresh).catch(function () {});
    });
    source.addEventListener("open", function () { showFeed(true); });
    source.addEventListener("error", function () {
      showFeed(false);
      // The browser gives up on a refused stream (e.g. 401 when the session expired): find
      // out why with a plain fetch, which sends the agent to the login when it is that.
      if (source.readyState === EventSource.CLOSED) {
        refresh().catch(function () {});
      }
    });
  }

  document.querySelectorAll("[data-live]").forEach(function (element) {
    if (element.dataset.scroll) scrollDown(element);
    follow(element);
  });
})();
