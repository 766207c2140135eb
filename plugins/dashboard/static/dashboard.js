// The modelfit dashboard's pages: plots drawn with plotly.js from the server's JSON.
// Text from the database is only ever put in the page as textContent (never as HTML);
// labels given to plotly were escaped by the server.
"use strict";

const POLL_MS = Number(document.body.dataset.pollMs || 1000);
// While a fit runs, the page is drawn again at most this often: the status line at every
// poll, the error per round and the best parameters every LIGHT_REDRAW_MS, the scatter
// plots, pairs and traces every HEAVY_REDRAW_MS (a fast fit's page must not take the CPU
// the fit needs); everything at once when the fit ends.
const LIGHT_REDRAW_MS = 700;
const HEAVY_REDRAW_MS = 10000;
const COLOURS = {recorded: "#555", best: "#1f77b4", clicked: "#e8590c",
                 other: ["#1f77b4", "#d62728"]};
const PLOT_CONFIG = {displaylogo: false, responsive: true};

async function getJSON(url) {
  const response = await fetch(url, {cache: "no-store"});
  const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function query(params) {
  return new URLSearchParams(params).toString();
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function setText(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text === null || text === undefined ? "–" : String(text);
}

function showError(container, error) {
  const box = element("p", String(error.message || error), "error-message");
  container.replaceChildren(box);
}

function markReady() {
  if (document.body.dataset.ready !== "1") performance.mark("modelfit-ready");
  document.body.dataset.ready = "1";
}

// -- status ---------------------------------------------------------------------------
const STATE_TEXT = {
  running: "running",
  finished: "the fit has finished",
  interrupted: "the fit has stopped",
  ended: "ended",
  unknown: "status unknown",
};

function showState(node, status) {
  node.textContent = STATE_TEXT[status.state] || status.state;
  node.className = `state state-${status.state}`;
  node.title = status.detail || "";
}

// -- the studies page -------------------------------------------------------------------
function studyRow(study) {
  const row = element("tr");
  row.dataset.name = study.name;
  const link = element("a", study.name);
  link.href = study.href;
  const first = element("td");
  first.append(link);
  row.append(first);
  if (study.problem) {
    const cell = element("td", study.problem, "problem");
    cell.colSpan = 6;
    row.append(cell);
    return row;
  }
  const model = element("td", null, "model");
  model.append(element("code", study.model));
  const state = element("td");
  const badge = element("span");
  showState(badge, study);
  badge.textContent = study.state;
  state.append(badge);
  row.append(model, state, element("td", study.rounds, "number"),
             element("td", study.evaluations, "number"),
             element("td", study.best_error, "number"), element("td", study.last_update));
  return row;
}

async function studiesPage() {
  const body = document.querySelector("#studies tbody");
  markReady();
  for (;;) {
    await sleep(POLL_MS);
    try {
      const data = await getJSON("/api/studies");
      if (data.studies.length) body.replaceChildren(...data.studies.map(studyRow));
    } catch (error) { /* the next poll tries again */ }
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// -- plots ----------------------------------------------------------------------------
function axisType(log) { return log ? "log" : "linear"; }

function roundsFigure(rounds, axis, x = "round") {
  const xs = rounds[x];
  const band = (low, high, colour, name) => [
    {x: xs, y: rounds[low], mode: "lines", line: {width: 0}, hoverinfo: "skip",
     showlegend: false, type: "scatter"},
    {x: xs, y: rounds[high], mode: "lines", line: {width: 0}, fill: "tonexty",
     fillcolor: colour, name, type: "scatter", hoverinfo: "skip"}];
  const data = [
    ...band("min", "max", "rgba(31,119,180,0.12)", "all errors of the round"),
    ...band("q25", "q75", "rgba(31,119,180,0.35)", "middle half"),
    {x: xs, y: rounds.median, mode: "lines", line: {color: "rgba(31,119,180,0.8)", width: 1},
     name: "median", type: "scatter"},
    {x: xs, y: rounds.best, mode: "lines", line: {color: "#d62728", width: 2.5},
     name: "best so far", type: "scatter"},
  ];
  const layout = {margin: {t: 10, r: 10, b: 45, l: 70}, height: 320,
                  legend: {orientation: "h", y: -0.25},
                  xaxis: {title: {text: rounds.group > 1 ?
                    `round (groups of ${rounds.group})` : x}},
                  yaxis: {title: {text: axis.title}, type: axisType(axis.log),
                          exponentformat: "power"}};
  return {data, layout};
}

function pick(values, indices) {
  return Array.isArray(values) ? indices.map((k) => values[k]) : values;
}

// Two traces of one scatter plot: the points (uniform markers: plotly draws thousands of
// those fast) and, as diamonds above them, the points whose traces are stored.
function pointTraces(points, x, y, style) {
  const plain = [], traced = [];
  points.traced.forEach((t, k) => (t ? traced : plain).push(k));
  const colour = style.colour;
  const make = (indices, marker) => ({
    x: pick(x, indices), y: pick(y, indices), type: "scatter", mode: "markers",
    customdata: indices.map((k) => [points.round[k], points.sample[k]]),
    marker: Object.assign({color: pick(colour, indices), colorscale: style.colorscale,
                           reversescale: style.reversescale,
                           cmin: style.cmin, cmax: style.cmax}, marker),
    hovertemplate: "round %{customdata[0]}, sample %{customdata[1]}<br>" +
                   "x %{x:.4g}, y %{y:.4g}<extra></extra>",
    xaxis: style.xaxis, yaxis: style.yaxis, name: style.name, showlegend: false,
  });
  const finite = Array.isArray(colour) ? colour.filter((c) => c !== null) : [];
  if (finite.length) {
    style.cmin = Math.min(...finite);
    style.cmax = Math.max(...finite);
  }
  const traces = [make(plain, {size: 5, opacity: 0.8, showscale: style.showscale,
                               colorbar: style.colorbar})];
  if (traced.length) {
    traces.push(make(traced, {size: 10, symbol: "diamond", line: {width: 1, color: "#000"}}));
  }
  return traces;
}

function gridLayout(count, columns, cellHeight) {
  const rows = Math.max(1, Math.ceil(count / columns));
  return {rows, layout: {grid: {rows, columns, pattern: "independent", xgap: 0.12, ygap: 0.25},
          height: rows * cellHeight + 40, margin: {t: 20, r: 10, b: 40, l: 60},
          showlegend: false}};
}

function parametersFigure(parameters) {
  const plots = parameters.plots;
  const columns = Math.min(3, Math.max(1, plots.length));
  const {layout} = gridLayout(plots.length, columns, 260);
  const data = plots.map((plot, k) => {
    const suffix = k === 0 ? "" : String(k + 1);
    layout[`xaxis${suffix}`] = {title: {text: plot.axis.title}, type: axisType(plot.axis.log),
                                exponentformat: "power"};
    layout[`yaxis${suffix}`] = {title: {text: k % columns === 0 ? parameters.error_axis.title : ""},
                                type: axisType(parameters.error_axis.log),
                                exponentformat: "power"};
    return pointTraces(plot, plot.x, plot.error, {
      xaxis: `x${suffix}`, yaxis: `y${suffix}`, colour: plot.round, colorscale: "Viridis",
      showscale: k === plots.length - 1, colorbar: {title: {text: "round"}, thickness: 10}});
  });
  return {data: data.flat(), layout};
}

function pairsFigure(pairs) {
  // the lower triangle of a matrix: the pair (a, b), a < b, in row b - 1 and column a
  const size = pairs.parameters.length - 1;
  if (size < 1) return null;
  const layout = {grid: {rows: size, columns: size, pattern: "independent", xgap: 0.08,
                         ygap: 0.12},
                  height: Math.max(320, size * 230), margin: {t: 20, r: 10, b: 40, l: 60},
                  showlegend: false};
  return buildPairs(pairs, layout);
}

function buildPairs(pairs, layout) {
  const n = pairs.parameters.length;
  const size = n - 1;
  const data = [];
  let index = 0;
  for (let a = 0; a < n; a += 1) {
    for (let b = a + 1; b < n; b += 1) {
      const pair = pairs.pairs[index];
      index += 1;
      const cell = (b - 1) * size + a + 1;
      const suffix = cell === 1 ? "" : String(cell);
      layout[`xaxis${suffix}`] = {title: {text: b === n - 1 ? pair.x_axis.title : ""},
                                  type: axisType(pair.x_axis.log), exponentformat: "power"};
      layout[`yaxis${suffix}`] = {title: {text: a === 0 ? pair.y_axis.title : ""},
                                  type: axisType(pair.y_axis.log), exponentformat: "power"};
      data.push(...pointTraces(pair, pair.x, pair.y, {
        xaxis: `x${suffix}`, yaxis: `y${suffix}`, colour: pair.colour, colorscale: "Viridis",
        reversescale: true, showscale: index === 1,
        colorbar: {title: {text: pairs.colour_title}, thickness: 10}}));
    }
  }
  for (let a = 0; a < size; a += 1) {  // empty cells above the diagonal
    for (let b = 0; b < a; b += 1) {
      const cell = b * size + a + 1;
      const suffix = cell === 1 ? "" : String(cell);
      layout[`xaxis${suffix}`] = {visible: false};
      layout[`yaxis${suffix}`] = {visible: false};
    }
  }
  return {data, layout};
}

function tracesFigure(outputs, group, clicked, bestLabel) {
  // one row per trace of the group (at most 4), each output in its own rows
  const rows = [];
  for (const output of outputs) {
    for (const trace of output.traces.slice(group * 4, group * 4 + 4)) {
      rows.push({output, trace});
    }
  }
  const count = Math.max(1, rows.length);
  const layout = {grid: {rows: count, columns: 1, pattern: "independent", ygap: 0.25 / count},
                  height: Math.max(260, count * 190), margin: {t: 20, r: 10, b: 45, l: 70},
                  legend: {orientation: "h", y: 1.02, yanchor: "bottom"}};
  const data = [];
  const legend = new Set();
  const series = (values, name, colour, axes, spikes, offset) => {
    if (!values) return;
    const show = !legend.has(name);
    legend.add(name);
    if (spikes) {
      data.push({x: values.t, y: values.t.map(() => offset), type: "scatter", mode: "markers",
                 marker: {symbol: "line-ns-open", size: 14, color: colour}, name,
                 legendgroup: name, showlegend: show, ...axes});
    } else {
      data.push({x: values.t, y: values.v, type: "scatter", mode: "lines",
                 line: {color: colour, width: name === "recorded" ? 1.5 : 2}, name,
                 legendgroup: name, showlegend: show, ...axes});
    }
  };
  rows.forEach(({output, trace}, k) => {
    const suffix = k === 0 ? "" : String(k + 1);
    const axes = {xaxis: `x${suffix}`, yaxis: `y${suffix}`};
    layout[`xaxis${suffix}`] = {title: {text: k === rows.length - 1 ? "time (ms)" : ""}};
    layout[`yaxis${suffix}`] = {title: {text: `${output.title} #${trace.trace}`},
                                showticklabels: !output.spikes, range: output.spikes ?
                                  [-0.5, 2.5] : undefined};
    series(trace.recorded, "recorded", COLOURS.recorded, axes, output.spikes, 0);
    series(trace.simulated, bestLabel, COLOURS.best, axes, output.spikes, 1);
    if (clicked) {
      const other = clicked.outputs.find((o) => o.name === output.name);
      const match = other && other.traces.find((t) => t.trace === trace.trace);
      if (match) series(match.simulated, clicked.label, COLOURS.clicked, axes, output.spikes, 2);
    }
  });
  return {data, layout, empty: rows.length === 0};
}

function draw(id, figure) {
  const node = document.getElementById(id);
  if (!node || !figure) return;
  return Plotly.react(node, figure.data, figure.layout, PLOT_CONFIG);
}

function bestTable(container, best) {
  if (!best.rows.length) {
    container.replaceChildren(element("p", "No finite error yet."));
    return;
  }
  const table = element("table", null, "best");
  const head = element("tr");
  for (const title of ["parameter", "best value", "lower", "upper", "within bounds",
                       "spread (best 5 %)"]) head.append(element("th", title));
  table.append(head);
  for (const row of best.rows) {
    const tr = element("tr");
    const bar = element("td");
    if (row.position !== null) {
      const track = element("div", null, "track");
      const mark = element("div", null, row.at_bound ? "mark at-bound" : "mark");
      mark.style.left = `${(100 * row.position).toFixed(1)}%`;
      track.append(mark);
      bar.append(track);
      if (row.at_bound) bar.append(element("span", "at a bound", "warning"));
    }
    const spread = row.spread === null ? "–" : `${(100 * row.spread).toFixed(0)} %`;
    tr.append(element("td", row.name), element("td", row.value, "number"),
              element("td", row.lower, "number"), element("td", row.upper, "number"),
              bar, element("td", spread, "number"));
    table.append(tr);
  }
  const caption = element("p", `error ${best.error} (round ${best.round}, sample ${best.sample})`,
                          "note");
  container.replaceChildren(caption, table);
}

// -- what each worker of a distributed backend did ------------------------------------------
const MAX_WORKER_LINES = 12;  // more workers: a heatmap (one row per worker)

function percent(share) {
  return share === null || share === undefined ? "–" : `${(100 * share).toFixed(0)} %`;
}

function workersFigure(workers) {
  const x = workers.round;
  const title = workers.group > 1 ? `round (groups of ${workers.group})` : "round";
  const hover = "%{x}: busy %{y:.0f} %<extra>%{fullData.name}</extra>";
  const layout = {margin: {t: 10, r: 10, b: 45, l: 70}, height: 300,
                  xaxis: {title: {text: title}}};
  if (workers.workers.length <= MAX_WORKER_LINES) {
    const data = workers.workers.map((worker, k) => ({
      x, y: workers.share[k].map((v) => (v === null ? null : 100 * v)), type: "scatter",
      mode: x.length > 60 ? "lines" : "lines+markers", name: worker.label,
      hovertemplate: `round ${hover}`}));
    layout.yaxis = {title: {text: "busy (% of the round)"}, range: [0, 105]};
    layout.legend = {orientation: "h", y: -0.25};
    return {data, layout};
  }
  layout.height = Math.min(900, 120 + 14 * workers.workers.length);
  layout.margin.l = 160;
  layout.yaxis = {type: "category", automargin: true, autorange: "reversed"};  // as listed
  const data = [{type: "heatmap", x, y: workers.workers.map((w) => w.label),
                 z: workers.share.map((row) => row.map((v) => (v === null ? null : 100 * v))),
                 zmin: 0, zmax: 100, colorscale: "Viridis",
                 colorbar: {title: {text: "busy %"}, thickness: 10},
                 hovertemplate: "%{y}<br>round %{x}: busy %{z:.0f} %<extra></extra>"}];
  return {data, layout};
}

function workersSummary(workers) {
  const listed = workers.workers;
  const head = `${workers.n_workers} worker${workers.n_workers === 1 ? "" : "s"}, ` +
    `${workers.chunks} chunks in ${workers.n_rounds} round${workers.n_rounds === 1 ? "" : "s"}`;
  const shares = listed.map((w) => w.busy_share).filter((v) => v !== null);
  if (!shares.length) return `${head}; busy share unknown (no round duration)`;
  if (listed.length <= 8) {
    return `${head}; busy ` + listed.map((w) => `${percent(w.busy_share)} (${w.name})`)
      .join(", ");
  }
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  return `${head}; busy ${percent(mean)} on average (from ${percent(Math.min(...shares))} ` +
    `to ${percent(Math.max(...shares))})`;
}

function workersTable(container, workers) {
  const table = element("table", null, "workers");
  const head = element("tr");
  for (const title of ["worker", "busy", "busy time", "chunks", "parameter sets", "rounds"]) {
    head.append(element("th", title));
  }
  table.append(head);
  for (const worker of workers.workers) {
    const tr = element("tr");
    tr.append(element("td", worker.name, "worker-name"),
              element("td", percent(worker.busy_share), "number"),
              element("td", worker.busy_s === null ? "–" : `${worker.busy_s.toFixed(1)} s`,
                      "number"),
              element("td", worker.chunks, "number"), element("td", worker.n_samples, "number"),
              element("td", worker.rounds, "number"));
    table.append(tr);
  }
  container.replaceChildren(table);
}

async function workersPanel(workers) {
  const section = document.getElementById("workers");
  if (!section) return;
  if (!workers) {  // a study of a single-process backend: no panel
    section.hidden = true;
    return;
  }
  section.hidden = false;
  setText("workers-summary", workersSummary(workers));
  workersTable(document.getElementById("workers-table"), workers);
  const notes = [];
  if (workers.n_workers > workers.workers.length) {
    notes.push(`${workers.n_workers - workers.workers.length} more workers not shown ` +
               `(the ${workers.workers.length} busiest are).`);
  }
  if (workers.unreadable) notes.push(`${workers.unreadable} stored rows could not be read.`);
  if (workers.truncated) notes.push("Only the first rows of a very long activity are shown.");
  setText("workers-note", notes.join(" "));
  await draw("plot-workers", workersFigure(workers));
}

function pointPanel(container, point) {
  const table = element("table", null, "point");
  for (const row of point.parameters) {
    const tr = element("tr");
    tr.append(element("th", row.name), element("td", row.value, "number"));
    table.append(tr);
  }
  const title = element("h3", `Clicked: round ${point.round}, sample ${point.sample}`);
  const error = element("p", `error ${point.error}${point.diverged ? " (diverged)" : ""}`);
  const note = element("p", point.traces ? "Its traces are drawn above (orange)." :
    "Its traces were not stored: a fit stores the traces of each point that was the best " +
    "when it was found (diamonds).", "note");
  container.replaceChildren(title, error, table, note);
}

// -- the study page -------------------------------------------------------------------
function studyPage() {
  const name = document.body.dataset.study;
  const view = {data: null, clicked: null, group: 0, status: null, loading: false};

  const traceGroups = () => {
    const select = document.getElementById("trace-group");
    const most = Math.max(0, ...view.data.traces.map((o) => o.traces.length));
    const groups = Math.max(1, Math.ceil(most / 4));
    if (select.options.length !== groups) {
      select.replaceChildren(...Array.from({length: groups}, (_, g) => {
        const option = element("option", `${g * 4 + 1}–${Math.min(most, g * 4 + 4)}`);
        option.value = String(g);
        return option;
      }));
    }
    select.value = String(view.group);
  };

  const drawTraces = () => {
    const data = view.data;
    traceGroups();
    const bestLabel = data.traces_of ? `best fit (round ${data.traces_of[0]})` : "best fit";
    const figure = tracesFigure(data.traces, view.group, view.clicked, bestLabel);
    const note = document.getElementById("traces-note");
    if (figure.empty) {
      note.textContent = "No traces stored for this study (written by an earlier modelfit, " +
        "or its fit records no traces: online errors, batches scored where they ran).";
    } else {
      note.textContent = data.traces_of ? "" : "No simulated traces stored yet.";
    }
    return draw("plot-traces", figure);
  };

  const onClick = async (event) => {
    const point = event.points && event.points[0];
    if (!point || !point.customdata) return;
    const [round, sample] = point.customdata;
    const panel = document.getElementById("clicked");
    try {
      const data = await getJSON(`/api/point?${query({name, round, sample})}`);
      pointPanel(panel, data);
      view.clicked = data.traces ? {outputs: data.traces,
                                    label: `round ${round}, sample ${sample}`} : null;
      await drawTraces();
      panel.dataset.point = `${round},${sample}`;
    } catch (error) { showError(panel, error); }
  };

  const drawPairs = async () => {
    const chosen = [...document.querySelectorAll("#pair-choice input:checked")]
      .map((box) => box.value);
    const node = document.getElementById("plot-pairs");
    try {
      const pairs = await getJSON(`/api/pairs?${query({name, p: chosen.join(",")})}`);
      const figure = pairsFigure(pairs);
      if (!figure) {
        Plotly.purge(node);
        node.replaceChildren(element("p", "Choose two parameters or more.", "note"));
        return;
      }
      if (!node.classList.contains("js-plotly-plot")) node.replaceChildren();
      await draw("plot-pairs", figure);
      bindClick(node);
    } catch (error) { showError(node, error); }
  };

  const bindClick = (node) => {
    if (node && !node.dataset.clickBound && node.on) {
      node.on("plotly_click", onClick);
      node.dataset.clickBound = "1";
    }
  };

  const showStatus = (status) => {
    showState(document.getElementById("state"), status);
    setText("n-rounds", status.rounds);
    setText("n-evaluations", status.evaluations);
    setText("best-error", status.best_error);
    setText("last-update", status.last_update_text);
    setText("state-detail", status.detail || "");
  };

  const load = async () => {
    if (view.loading) {  // drawn again once the current drawing ends
      view.pending = true;
      return;
    }
    view.loading = true;
    view.pending = false;
    try {
      const now = Date.now();
      const heavy = !view.heavyAt || !view.status || view.status.state !== "running" ||
        now - view.heavyAt >= HEAVY_REDRAW_MS;
      const parts = heavy ? {name} : {name, parts: "light"};
      const data = await getJSON(`/api/study?${query(parts)}`);
      view.data = heavy ? data : Object.assign(view.data, data);
      view.status = data.status;
      showStatus(data.status);
      const unreadable = data.unreadable + view.data.unreadable_traces;
      setText("unreadable", unreadable ? `${unreadable} stored rows could not be read` : "");
      await draw("plot-rounds", roundsFigure(data.rounds, data.error_axis));
      bestTable(document.getElementById("best-table"), data.best);
      await workersPanel(data.workers);
      if (heavy) {
        view.heavyAt = now;
        await drawTraces();
        await draw("plot-parameters", parametersFigure(data.parameters));
        bindClick(document.getElementById("plot-parameters"));
        if (data.pareto) {
          await draw("plot-pareto", paretoFigure(data.pareto));
          bindClick(document.getElementById("plot-pareto"));
          frontTable(document.getElementById("front-members"), data.pareto);
        }
        await drawPairs();
      } else if (!view.heavyTimer) {  // the last rounds are drawn once the pause is over
        view.heavyTimer = setTimeout(() => { view.heavyTimer = null; load(); },
                                     HEAVY_REDRAW_MS - (now - view.heavyAt));
      }
      document.body.dataset.rounds = String(data.status.rounds);
      markReady();
    } catch (error) {
      showError(document.getElementById("status"), error);
      markReady();
    } finally {
      view.loading = false;
      if (view.pending) load();
    }
  };

  const poll = async () => {
    for (;;) {
      await sleep(POLL_MS);
      try {
        const status = await getJSON(`/api/status?${query({name})}`);
        const changed = !view.status || status.rounds !== view.status.rounds ||
          status.state !== view.status.state;
        showStatus(status);
        const finished = status.state !== "running";
        if (changed && (finished || !view.loadedAt ||
                        Date.now() - view.loadedAt >= LIGHT_REDRAW_MS)) {
          view.status = status;
          view.loadedAt = Date.now();
          load();  // the status keeps being polled while the plots are drawn
        }
      } catch (error) { /* the next poll tries again */ }
    }
  };

  document.getElementById("trace-group").addEventListener("change", (event) => {
    view.group = Number(event.target.value);
    drawTraces();
  });
  document.getElementById("pair-choice").addEventListener("change", drawPairs);
  load().then(poll);
}

function paretoFigure(pareto) {
  const all = pointTraces(pareto.all, pareto.all.x, pareto.all.y,
                          {name: "evaluated", colour: "rgba(31,119,180,0.45)"});
  const members = {...pareto.front, traced: pareto.front.traced.map(() => false)};
  const front = pointTraces(members, pareto.front.x, pareto.front.y,
                            {name: `front (${pareto.n_front})`, colour: "#d62728"})[0];
  Object.assign(front, {mode: "lines+markers", line: {color: "#d62728", shape: "hv"},
                        showlegend: true});
  all[0].showlegend = true;
  return {data: [...all, front],
          layout: {height: 380, margin: {t: 10, r: 10, b: 50, l: 70},
                   xaxis: {title: {text: pareto.titles[0]}, type: axisType(pareto.log_x)},
                   yaxis: {title: {text: pareto.titles[1]}, type: axisType(pareto.log_y)}}};
}

function frontTable(container, pareto) {
  const table = element("table", null, "front");
  const head = element("tr");
  head.append(element("th", "round"), element("th", "sample"));
  for (const name of pareto.names) head.append(element("th", name));
  table.append(head);
  for (const member of pareto.members) {
    const tr = element("tr");
    tr.append(element("td", member.round, "number"), element("td", member.sample, "number"));
    for (const value of member.objectives) {
      tr.append(element("td", value === null ? "–" : Number(value).toPrecision(4), "number"));
    }
    tr.title = member.parameters.join(", ");
    table.append(tr);
  }
  const note = element("p", `${pareto.n_front} members (hover a row for its parameters)`, "note");
  container.replaceChildren(note, table);
}

// -- two studies side by side ------------------------------------------------------------
function comparePage() {
  const names = [document.body.dataset.studyA, document.body.dataset.studyB];
  const state = {data: [null, null], statuses: [null, null]};
  const sides = [...document.querySelectorAll(".side")];

  const drawCompare = () => {
    const x = document.getElementById("compare-x").value;
    const data = [];
    state.data.forEach((study, k) => {
      if (!study) return;
      data.push({x: study.rounds[x], y: study.rounds.best, mode: "lines", type: "scatter",
                 name: `${k === 0 ? "left" : "right"}: ${study.label}`,
                 line: {color: COLOURS.other[k], width: 2.5}});
    });
    const axis = (state.data[0] || state.data[1] || {}).error_axis || {log: true, title: "error"};
    return draw("plot-compare-rounds", {data, layout: {
      height: 340, margin: {t: 10, r: 10, b: 45, l: 70}, legend: {orientation: "h", y: -0.25},
      xaxis: {title: {text: x}}, yaxis: {title: {text: axis.title}, type: axisType(axis.log),
                                          exponentformat: "power"}}});
  };

  const loadSide = async (k) => {
    const side = sides[k];
    try {
      const study = await getJSON(`/api/study?${query({name: names[k]})}`);
      study.label = study.names ? names[k] : names[k];
      state.data[k] = study;
      state.statuses[k] = study.status;
      showSideStatus(side, study.status);
      bestTable(side.querySelector("[data-field=best]"), study.best);
      const node = side.querySelector("[data-plot=traces]");
      const bestLabel = study.traces_of ? `best fit (round ${study.traces_of[0]})` : "best fit";
      const figure = tracesFigure(study.traces, 0, null, bestLabel);
      if (figure.empty) node.replaceChildren(element("p", "No traces stored.", "note"));
      else await Plotly.react(node, figure.data, figure.layout, PLOT_CONFIG);
    } catch (error) { showError(side.querySelector("[data-field=best]"), error); }
  };

  const showSideStatus = (side, status) => {
    showState(side.querySelector("[data-field=state]"), status);
    for (const field of ["rounds", "evaluations", "best_error"]) {
      side.querySelector(`[data-field=${field}]`).textContent = String(status[field]);
    }
  };

  const loadAll = async () => {
    await Promise.all([loadSide(0), loadSide(1)]);
    await drawCompare();
    markReady();
  };

  const poll = async () => {
    for (;;) {
      await sleep(POLL_MS);
      for (let k = 0; k < 2; k += 1) {
        try {
          const status = await getJSON(`/api/status?${query({name: names[k]})}`);
          const before = state.statuses[k];
          showSideStatus(sides[k], status);
          if (!before || before.rounds !== status.rounds || before.state !== status.state) {
            await loadSide(k);
            await drawCompare();
          }
        } catch (error) { /* the next poll tries again */ }
      }
    }
  };

  document.getElementById("compare-x").addEventListener("change", drawCompare);
  loadAll().then(poll);
}

function start() {
  performance.mark("modelfit-start");  // plotly.js and this script are loaded and run
  const page = document.body.dataset.page;
  if (page === "studies") studiesPage();
  else if (page === "study") studyPage();
  else if (page === "compare") comparePage();
  else markReady();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
