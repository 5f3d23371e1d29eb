"""The review page: one HTML document with its style and script inline (nothing fetched from elsewhere, works
offline). Every piece of data is put in the page with textContent, never as HTML.

Keys: 1 or ArrowLeft: the left answer is better; 2 or ArrowRight: the right one; t: tie; x: both bad;
r: show or hide the reference answer. Keys do nothing while the comment box has the focus.
"""

from __future__ import annotations

import json
from html import escape

STYLE = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{display:flex;gap:1em;align-items:center;justify-content:space-between;padding:.6em 1.2em;background:#fff;
 border-bottom:1px solid #dde1e6;flex-wrap:wrap}
header h1{font-size:1.05em;margin:0}
main{max-width:1200px;margin:1em auto;padding:0 1.2em}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1em 1.2em;margin-bottom:1em}
.muted{color:#667}
.turn{margin:.3em 0;padding:.4em .7em;border-radius:6px;white-space:pre-wrap;max-width:85%}
.turn.user{background:#eef3ff}
.turn.assistant{background:#f1f1f1;margin-left:auto}
.who{font-size:.8em;color:#667;display:block}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
.answers{display:grid;grid-template-columns:1fr 1fr;gap:1em}
@media (max-width:700px){.answers{grid-template-columns:1fr}}
.answer h2{font-size:1em;margin:0 0 .5em}
.scores{margin-top:.8em;font-size:.9em}
.scores label{margin-right:.5em;cursor:pointer}
.choices{display:flex;gap:.6em;flex-wrap:wrap;margin:.5em 0 1em}
button{font:inherit;padding:.45em 1em;border-radius:6px;border:1px solid #9aa3b0;background:#fff;cursor:pointer}
button.main{background:#1d4ed8;color:#fff;border-color:#1d4ed8}
button:disabled{opacity:.5;cursor:wait}
kbd{font:12px ui-monospace,monospace;border:1px solid #bbb;border-radius:3px;padding:0 .3em;background:#fafafa;
 color:#333}
textarea{width:100%;font:inherit;min-height:3em}
details.passage{margin:.3em 0}
#reference{background:#fffbe6;border:1px solid #f0e0a0}
#context{max-height:45vh;overflow:auto}
#status{min-height:1.5em}
#status.error{color:#b00020;font-weight:600}
[hidden]{display:none !important}
"""

BODY = """
<header>
 <h1>adaptlab review &middot; <span id=task></span></h1>
 <div id=progress class=muted aria-live=polite></div>
 <div id=whobox hidden><span class=muted>reviewer:</span> <b id=who></b> <button id=switch type=button>change</button>
 </div>
</header>
<main>
 <form id=login class=card hidden>
  <p><label>Your name (it names your ratings file; letters, digits, . _ - @):
   <input id=name autocomplete=nickname maxlength=64 pattern="[A-Za-z0-9][A-Za-z0-9._@-]{0,63}" required></label>
   <button class=main>Start</button></p>
 </form>
 <form id=keyform class=card hidden>
  <p><label>This server needs its API key (ADAPTLAB_API_KEY): <input id=key type=password autocomplete=off
   required></label> <button class=main>Use it</button></p>
  <p class=muted>Kept in this tab only (sessionStorage) and sent with every request.</p>
 </form>
 <div id=done class=card hidden><p><b>Nothing left to rate.</b> You have rated every item there is for you in this
  run. Thank you.</p></div>
 <section id=item hidden>
  <div class=card>
   <div class=muted id=where></div>
   <div id=context></div>
   <p><button id=toggle type=button>Show the reference answer <kbd>r</kbd></button></p>
   <div id=reference class=card hidden><div class=muted>Reference answer (from the test file)</div>
    <div id=reftext class=text></div></div>
  </div>
  <div class=answers>
   <div class="card answer" id=left><h2>Left answer</h2><div class="text body"></div><div class=passages></div>
    <div class=scores>Score (optional): </div></div>
   <div class="card answer" id=right><h2>Right answer</h2><div class="text body"></div><div class=passages></div>
    <div class=scores>Score (optional): </div></div>
  </div>
  <div class=card>
   <div class=choices>
    <button class=main data-choice=left type=button>&#9664; Left is better <kbd>1</kbd></button>
    <button class=main data-choice=right type=button>Right is better &#9654; <kbd>2</kbd></button>
    <button data-choice=tie type=button>Tie <kbd>t</kbd></button>
    <button data-choice=both_bad type=button>Both bad <kbd>x</kbd></button>
   </div>
   <label>Comment (optional)<textarea id=comment maxlength=4000></textarea></label>
  </div>
 </section>
 <div id=status aria-live=assertive></div>
</main>
"""

SCRIPT = """
"use strict";
const $ = (id) => document.getElementById(id);
const KEYS = {"1": "left", "ArrowLeft": "left", "2": "right", "ArrowRight": "right", "t": "tie", "x": "both_bad"};
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
let reviewer = null, current = null, busy = false;

function show(id, on) { $(id).hidden = !on; }
function status(text, error) { $("status").textContent = text || ""; $("status").className = error ? "error" : ""; }
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

async function api(method, path, body) {
  const headers = {};
  const key = sessionStorage.getItem("adaptlab-review-key");
  if (key) headers["Authorization"] = "Bearer " + key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  cache: "no-store"});
  } catch (e) {
    throw new Error("the review server does not answer (is `adaptlab review` still running?)");
  }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) {
    sessionStorage.removeItem("adaptlab-review-key");
    show("item", false); show("keyform", true); $("key").focus();
    throw new Error("the server needs its API key");
  }
  if (!response.ok) {
    const message = data && data.error && data.error.message ? data.error.message : "HTTP " + response.status;
    throw new Error(message);
  }
  return data;
}

function showProgress(p) {
  $("progress").textContent = "you: " + p.rated + " rated of " + p.planned + " planned"
    + " \\u00b7 everyone: " + p.everyone + " rating(s) by " + p.reviewers + " reviewer(s)";
  $("progress").dataset.rated = p.rated;
  $("progress").dataset.planned = p.planned;
}

function passages(list, into) {
  into.replaceChildren();
  if (!list || !list.length) return;
  into.append(el("p", "muted", "Passages it was given:"));
  list.forEach((p, i) => {
    const d = el("details", "passage");
    d.append(el("summary", null, (i + 1) + ". " + (p.source || "passage")), el("div", "text", p.text));
    into.append(d);
  });
}

function scores(side) {
  const box = $(side).querySelector(".scores");
  box.replaceChildren(document.createTextNode("Score (optional): "));
  for (let s = 1; s <= 5; s++) {
    const input = el("input"); input.type = "radio"; input.name = "score-" + side; input.value = s;
    const label = el("label"); label.append(input, " " + s); box.append(label);
  }
}

function render(item) {
  current = item;
  $("item").dataset.item = item.id;
  $("where").textContent = "Test row " + item.row + (item.line ? " (line " + item.line + " of the test file)" : "")
    + (item.turn !== null && item.turn !== undefined ? ", turn " + item.turn : "");
  const context = $("context");
  context.replaceChildren();
  if (item.turns) {
    context.append(el("p", "muted", "The conversation so far; the answers below are the assistant's next turn."));
    if (item.earlier_missing) context.append(el("p", "muted", "\u2026 (earlier turns are not kept in results.json)"));
    for (const t of item.turns) {
      const bubble = el("div", "turn " + (t.role === "assistant" ? "assistant" : "user"));
      bubble.append(el("span", "who", t.role === "assistant" ? "Assistant" : "User"), el("span", null, t.text));
      context.append(bubble);
    }
  } else {
    context.append(el("p", "muted", "Input"), el("div", "text", item.input));
  }
  const shared = el("div");
  passages(item.passages, shared);
  context.append(shared);
  $("reftext").textContent = item.reference;
  showReference(false);
  for (const side of ["left", "right"]) {
    $(side).querySelector(".body").textContent = item[side].answer;
    passages(item[side].passages, $(side).querySelector(".passages"));
    scores(side);
  }
  $("comment").value = "";
  show("done", false); show("item", true);
  context.scrollTop = context.scrollHeight;  // the latest turns, just above the answers, in view
}

function score(side) {
  const checked = $(side).querySelector("input:checked");
  return checked ? Number(checked.value) : null;
}

async function next() {
  const data = await api("GET", "/api/next?reviewer=" + encodeURIComponent(reviewer));
  showProgress(data.progress);
  if (data.done) { current = null; show("item", false); show("done", true); return; }
  render(data.item);
}

async function rate(choice) {
  if (busy || !current) return;
  busy = true;
  document.body.dataset.busy = "1";
  document.querySelectorAll("button[data-choice]").forEach((b) => { b.disabled = true; });
  status("saving\\u2026");
  try {
    const data = await api("POST", "/api/rate", {
      reviewer, item: current.id, choice, score_left: score("left"), score_right: score("right"),
      comment: $("comment").value.trim() || null,
    });
    showProgress(data.progress);
    await next();
    status("saved");
  } catch (e) {
    status("Not saved: " + e.message, true);
  } finally {
    busy = false;
    document.body.dataset.busy = "0";
    document.querySelectorAll("button[data-choice]").forEach((b) => { b.disabled = false; });
  }
}

function showReference(on) {
  $("reference").hidden = !on;
  $("toggle").firstChild.textContent = (on ? "Hide" : "Show") + " the reference answer ";
}

function toggleReference() {
  if (current) showReference($("reference").hidden);
}

async function start() {
  $("who").textContent = reviewer || "";
  show("whobox", !!reviewer);
  if (!reviewer) { show("item", false); show("login", true); $("name").focus(); return; }
  show("login", false);
  if (CONFIG.keyed && !sessionStorage.getItem("adaptlab-review-key")) {
    show("keyform", true); $("key").focus(); return;
  }
  try { await next(); status(""); } catch (e) { status(e.message, true); }
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = (e.target && e.target.tagName) || "";
  if (tag === "TEXTAREA" || (tag === "INPUT" && e.target.type !== "radio") || tag === "SELECT") return;
  if (e.key === "r" || e.key === "R") { e.preventDefault(); toggleReference(); return; }
  const choice = KEYS[e.key] || KEYS[e.key.toLowerCase()];
  if (choice) { e.preventDefault(); rate(choice); }
});
document.querySelectorAll("button[data-choice]").forEach(
  (b) => b.addEventListener("click", () => rate(b.dataset.choice)));
$("toggle").addEventListener("click", toggleReference);
$("switch").addEventListener("click", () => {
  reviewer = null; localStorage.removeItem("adaptlab-reviewer"); start();
});
$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  if (!NAME.test(name)) {
    status("Use 1-64 letters, digits, . _ - or @, starting with a letter or digit.", true); return;
  }
  reviewer = name; localStorage.setItem("adaptlab-reviewer", name); start();
});
$("keyform").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("adaptlab-review-key", $("key").value);
  $("key").value = ""; show("keyform", false); start();
});

const asked = new URLSearchParams(location.search).get("reviewer");
if (asked && NAME.test(asked)) localStorage.setItem("adaptlab-reviewer", asked);
reviewer = localStorage.getItem("adaptlab-reviewer");
start();
"""


def render_page(task: str, keyed: bool = False) -> str:
    """The whole page for a run of task `task`; `keyed`: the server wants an API key (the page asks for it)."""
    config = json.dumps({"task": task, "keyed": keyed}).replace("<", "\\u003c")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'><link rel=icon href='data:,'>"
        f"<title>adaptlab review: {escape(task)}</title><style>{STYLE}</style></head><body>"
        f"{BODY}<script>const CONFIG = {config};\ndocument.getElementById('task').textContent = CONFIG.task;\n"
        f"{SCRIPT}</script></body></html>"
    )
