// The call page's player: the transcript follows what is being played (the word under the playhead is
// marked), a word, an utterance's time or a checklist hit plays from its moment, and the side buttons
// switch to one direction of a split recording without losing the place.
"use strict";

(function () {
  const player = document.getElementById("player");
  if (!player) {
    return;
  }
  const words = Array.from(document.querySelectorAll(".word[data-start]")).map((span) => ({
    span,
    start: Number(span.dataset.start),
    end: Number(span.dataset.end),
  }));
  words.sort((a, b) => a.start - b.start);
  const box = document.getElementById("utterances");
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  let current = null;

  // The word being said at `time`: the last one starting at or before it, if it has not ended.
  function wordAt(time) {
    let low = 0;
    let high = words.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (words[middle].start <= time) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found >= 0 && time < words[found].end ? words[found] : null;
  }

  function mark(word) {
    if (word === current) {
      return;
    }
    if (current) {
      current.span.classList.remove("current");
      current.span.removeAttribute("aria-current");
    }
    current = word;
    if (word) {
      word.span.classList.add("current");
      word.span.setAttribute("aria-current", "true");
      keepInView(word.span);
    }
  }

  // Scroll the transcript's own box, never the page: a reader looking at the score is not moved away.
  function keepInView(span) {
    if (!box || box.scrollHeight <= box.clientHeight) {
      return;
    }
    const top = span.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
    const bottom = top + span.offsetHeight;
    if (top < box.scrollTop || bottom > box.scrollTop + box.clientHeight) {
      box.scrollTo({ top: Math.max(top - box.clientHeight / 3, 0), behavior: calm ? "auto" : "smooth" });
    }
  }

  function follow() {
    mark(wordAt(player.currentTime));
  }

  function seek(seconds) {
    player.currentTime = seconds;
    const playing = player.play();
    if (playing) {
      playing.catch(() => {});  // a browser refusing to play without a gesture still moved the playhead
    }
  }

  player.addEventListener("timeupdate", follow);
  player.addEventListener("seeked", follow);

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const button = target && target.closest("[data-seek]");
    if (button) {
      seek(Number(button.dataset.seek));
      return;
    }
    const word = target && target.closest(".word[data-start]");
    if (word) {
      seek(Number(word.dataset.start));
    }
  });

  // One side of a split recording, or both: the same moment, playing on if it was playing.
  const sides = Array.from(document.querySelectorAll("button.side"));
  sides.forEach((button) => {
    button.addEventListener("click", () => {
      const at = player.currentTime;
      const wasPlaying = !player.paused;
      const side = button.dataset.side;
      player.src = player.dataset.src + (side ? "?side=" + encodeURIComponent(side) : "");
      player.addEventListener(
        "loadedmetadata",
        () => {
          player.currentTime = at;
          if (wasPlaying) {
            player.play().catch(() => {});
          }
        },
        { once: true },
      );
      sides.forEach((other) => other.setAttribute("aria-pressed", String(other === button)));
    });
  });
})();
