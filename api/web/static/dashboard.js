// The dashboard's slow tables arrive after the page: each section with data-fragment fetches its HTML
// (rendered and escaped by the server, same origin) and puts it in place of its "Loading…" line.
"use strict";
(function () {
  for (const section of document.querySelectorAll("[data-fragment]")) {
    fetch(section.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then((html) => {
        const parsed = new DOMParser().parseFromString(html, "text/html");
        section.querySelector(".loading").remove();
        section.append(...parsed.body.childNodes);
        section.dataset.loaded = "true";
      })
      .catch(() => {
        section.querySelector(".loading").hidden = true;
        section.querySelector(".failed").hidden = false;
        section.dataset.loaded = "failed";
      })
      .finally(() => section.setAttribute("aria-busy", "false"));
  }
})();
