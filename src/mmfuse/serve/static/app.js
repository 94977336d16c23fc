// The mmfuse page: builds a form from /metadata, sends it to /predict (or /search) and draws the answer.
"use strict";

const $ = (id) => document.getElementById(id);
let meta = null;

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// A field as the column's modality registration describes it (widget: text, number, select or file).
function field(column) {
  const id = `f-${column.name}`;
  const box = el("div", { class: "field" });
  const label = el("label", { for: id }, column.name + " ");
  label.append(el("span", { class: "kind" }, `${column.modality}, ${column.encoder}`));
  box.append(label);
  if (column.widget === "file") {
    const input = el("input", { type: "file", id, name: column.name, accept: column.accept || "",
                                ...(column.set ? { multiple: "" } : {}) });  // a set column: several files
    const preview = el("img", { class: "preview", alt: `${column.name} preview`, hidden: "" });
    const player = el("audio", { controls: "", hidden: "" });
    input.addEventListener("change", () => {
      preview.hidden = player.hidden = true;
      if (!input.files.length) return;
      const file = input.files[0];
      const shown = file.type.startsWith("image/") ? preview : file.type.startsWith("audio/") ? player : null;
      if (shown) { shown.src = URL.createObjectURL(file); shown.hidden = false; }
    });
    box.append(input, preview, player);
    return box;
  }
  let input;
  if (column.widget === "number") {
    input = el("input", { type: "number", step: "any", id, name: column.name });
  } else if (column.widget === "date") {  // a date and time
    input = el("input", { type: "datetime-local", step: "1", id, name: column.name });
  } else if (column.widget === "select") {
    input = el("select", { id, name: column.name });
    input.append(el("option", { value: "" }, "(missing)"));
    for (const c of column.categories || []) input.append(el("option", { value: c }, c));
  } else {
    input = el("textarea", { rows: "2", id, name: column.name, placeholder: column.hint || "" });
  }
  box.append(input);
  return box;
}

function buildForm() {
  const fields = $("fields");
  if (meta.kind === "index") {
    $("about").textContent = `search ${meta.items} ${meta.column} items (query by ${meta.queries.map((q) => q.name).join(" or ")})`;
    for (const query of meta.queries) fields.append(field(query));
    const k = el("div", { class: "field" });
    k.append(el("label", { for: "f-k" }, "results "),
             el("input", { type: "number", id: "f-k", name: "k", min: "1", max: "100", step: "1", value: "5" }));
    fields.append(k);
    $("submit").textContent = "Search";
    return;
  }
  const classes = meta.classes ? `, ${meta.classes.length} classes` : "";
  $("about").textContent = `predicts ${meta.label} (${meta.task}${classes}) from ${meta.columns.length} columns`;
  for (const column of meta.columns) fields.append(field(column));
}

function barRow(container, name, value, scale, signed) {
  container.append(el("span", {}, name));
  const track = el("div", { class: "track" });
  const bar = el("div", { class: "bar" + (value < 0 ? " negative" : "") });
  bar.style.width = `${Math.min(100, (100 * Math.abs(value)) / scale)}%`;
  track.append(bar);
  container.append(track);
  container.append(el("span", { class: "value" }, (signed && value > 0 ? "+" : "") + value.toFixed(3)));
}

function showPrediction(answer) {
  const p = answer.predictions[0];
  $("prediction").textContent = String(p.prediction);
  $("used").textContent = `inputs used: ${p.inputs_used.join(", ") || "none"}`;
  const bars = $("bars");
  bars.replaceChildren();
  if (p.probabilities) {
    const top = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]).slice(0, 10);
    for (const [name, value] of top) barRow(bars, name, value, 1, false);
  }
  const contrib = $("contributions");
  contrib.replaceChildren();
  if (p.contributions) {
    const values = p.contributions.shapley || p.contributions.removal;
    const kind = p.contributions.shapley ? "Shapley value" : "change when removed";
    $("contrib-what").textContent = `${kind} of the ${p.contributions.explains}`;
    const scale = Math.max(1e-6, ...Object.values(values).map(Math.abs));
    for (const [name, value] of Object.entries(values)) barRow(contrib, name, value, scale, true);
  }
  const notes = $("notes");
  notes.replaceChildren(...p.notes.map((n) => el("li", {}, n)));
  $("answer").hidden = false;
}

function showResults(answer) {
  const hits = $("hits");
  hits.replaceChildren();
  for (const r of answer.results) {
    const item = el("li");
    if (r.file) item.append(el("img", { src: r.file, alt: r.value }));
    // the item's own columns (its name, its category...), else the value the index embedded
    const about = (meta.columns || []).map((c) => `${c}: ${r[c]}`).join(" · ") || r.value;
    item.append(el("span", {}, `${r.rank}. ${about}  (${r.score.toFixed(3)})`));
    hits.append(item);
  }
  $("results").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  const status = $("status");
  status.className = "";
  status.textContent = "working...";
  const form = new FormData();
  for (const input of $("fields").querySelectorAll("input, textarea, select")) {
    if (input.type === "file") {
      for (const file of input.files) form.append(input.name, file);
    } else if (input.value.trim() !== "") {
      form.append(input.name, input.value);
    }
  }
  try {
    const response = await fetch(meta.kind === "index" ? "/search" : "/predict", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error + (answer.field ? ` (${answer.field})` : ""));
    status.textContent = "";
    if (meta.kind === "index") showResults(answer); else showPrediction(answer);
  } catch (err) {
    status.className = "error";
    status.textContent = String(err.message || err);
  }
}

async function start() {
  meta = await (await fetch("/metadata")).json();
  $("version").textContent = meta.mmfuse;
  buildForm();
  $("form").addEventListener("submit", submit);
}

start();
