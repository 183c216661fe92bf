// The live panel: one WebSocket to /api/v1/events (the session cookie authenticates it), one list item
// per call keyed by its PBX and linkedid, moved to "just ended" when the call completes. Reconnects with
// a growing delay; shows what it is doing in a polite live region for screen readers.
"use strict";
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const label = (name) => root.dataset["label" + name] || name;
  const status = document.getElementById("live-status");
  const now = document.getElementById("live-calls");
  const ended = document.getElementById("ended-calls");
  const empty = document.getElementById("live-empty");
  const KEEP_ENDED = 20;
  const calls = new Map();
  let delay = 500;

  function say(state) {
    status.textContent = status.dataset[state] || state;
    status.dataset.state = state;
  }

  function keyOf(pbx, linkedid) {
    return pbx + "/" + linkedid;
  }

  function item(key) {
    let li = calls.get(key);
    if (!li) {
      li = document.createElement("li");
      li.dataset.key = key;
      li.dataset.seen = "";
      now.prepend(li);
      calls.set(key, li);
    }
    return li;
  }

  function describe(li, state, who, at, entity, callId) {
    li.className = state;
    li.dataset.state = state;
    li.dataset.seen = (li.dataset.seen + " " + state).trim();
    li.replaceChildren();
    const head = document.createElement("strong");
    head.textContent = label(state === "answered" ? "Answered" : state === "ringing" ? "Ringing" : "Completed");
    li.append(head, " · ", who);
    if (at) li.append(" · " + label("At") + " " + at);
    if (entity) {
      const crm = document.createElement("span");
      crm.className = "badge";
      crm.textContent = entity;
      li.append(" ", crm);
    }
    if (callId) {
      const link = document.createElement("a");
      link.href = "/ui/calls/" + callId;
      link.textContent = label("Open");
      li.append(" · ", link);
    }
  }

  function entityName(entity) {
    return entity ? (entity.name || entity.kind + " " + entity.external_id) : "";
  }

  function onMessage(message) {
    if (message.type === "call.ringing" || message.type === "call.answered") {
      const li = item(keyOf(message.pbx, message.linkedid));
      const who = message.direction === "inbound" ? message.caller : message.callee;
      describe(li, message.type === "call.ringing" ? "ringing" : "answered", who, message.extension, entityName(message.entity));
    } else if (message.type === "call.completed") {
      const call = message.call;
      const key = keyOf(call.pbx, call.linkedid);
      const li = item(key);
      const who = call.direction === "inbound" ? call.caller : call.callee;
      describe(li, "completed", who, call.manager, entityName(call.entity), call.id);
      calls.delete(key);
      ended.prepend(li);
      while (ended.children.length > KEEP_ENDED) ended.lastElementChild.remove();
    }
    empty.hidden = now.children.length > 0;
  }

  function connect() {
    say("connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/api/v1/events");
    socket.addEventListener("open", () => {
      delay = 500;
      say("connected");
    });
    socket.addEventListener("message", (event) => {
      try {
        onMessage(JSON.parse(event.data));
      } catch (error) {
        console.warn("live: unreadable message", error);
      }
    });
    socket.addEventListener("close", () => {
      say("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }

  connect();
})();
