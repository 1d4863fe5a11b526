// The engagement dashboard: every chart is computed here from the embedded rows, so the filters work
// offline. Plotly draws; this file only aggregates and wires the controls.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("dashboard-data").textContent);
  const PHASES = DATA.phase_order;
  const profiles = Object.fromEntries(DATA.profiles.map((p) => [p.UserId, p]));
  const FILTERS = DATA.filters;

  // A phase with no analysed clip has no dominant emotion or state: say why, as far as the phase tells.
  function unknownCause(row) {
    return row.audio_quality === "blank" ? "unknown: blank audio" : "unknown: no analysed audio";
  }
  function mean(values) {
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  }
  function interval(values) {
    // 95% normal-approximation interval of a mean (t for small n would be wider; n is shown beside it).
    if (values.length < 2) return null;
    const m = mean(values);
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1));
    return 1.96 * sd / Math.sqrt(values.length);
  }
  function numbers(rows, column) {
    return rows.map((r) => r[column]).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  }
  function selected() {
    const chosen = {};
    for (const name of FILTERS) chosen[name] = document.getElementById("filter-" + name).value;
    return chosen;
  }
  function filtered() {
    const chosen = selected();
    return DATA.phases.filter((row) => {
      const profile = profiles[row.UserId] || {};
      return FILTERS.every((name) => {
        const value = name in row ? row[name] : profile[name];
        return chosen[name] === "" || String(value) === chosen[name];
      });
    });
  }
  function byPhase(rows) {
    return PHASES.map((phase) => rows.filter((r) => r.Phase === phase)).map((group, i) => ({
      phase: PHASES[i],
      n: group.length,
      accuracy: numbers(group, "avg_accuracy"),
      engagement: numbers(group, "avg_Engagement"),
    })).filter((g) => g.n > 0);
  }

  function struggleChart(rows) {
    const groups = byPhase(rows);
    const traces = [["accuracy", "accuracy (0-100)", "#4C78A8"], ["engagement", "engagement (0-100)", "#F58518"]].map(
      ([key, name, color]) => ({
        type: "bar", name, marker: { color },
        x: groups.map((g) => g.phase),
        y: groups.map((g) => mean(g[key])),
        error_y: { type: "data", array: groups.map((g) => interval(g[key])), visible: true },
        text: groups.map((g) => "n=" + g[key].length), textposition: "outside",
        hovertemplate: "%{x}: %{y:.1f} (%{text})<extra>" + name + "</extra>",
      })
    );
    const scored = groups.filter((g) => g.accuracy.length);
    const weakest = scored.length ? scored.reduce((a, b) => (mean(a.accuracy) <= mean(b.accuracy) ? a : b)) : null;
    const annotations = weakest ? [{
      x: weakest.phase, y: mean(weakest.accuracy), yshift: 40, showarrow: true, arrowhead: 2,
      text: "weakest accuracy", font: { color: "#E45756" },
    }] : [];
    Plotly.react("chart-struggle", traces, {
      title: { text: "Where learners struggle: accuracy and engagement by phase (95% interval, n phases)" },
      barmode: "group", yaxis: { range: [0, 110], title: { text: "mean" } }, annotations, margin: { t: 60 },
    }, { responsive: true, displaylogo: false });
  }

  function mixChart(target, rows, column, title) {
    const values = [...new Set(rows.map((r) => r[column] || unknownCause(r)))].sort();
    const groups = PHASES.map((phase) => rows.filter((r) => r.Phase === phase)).filter((g) => g.length);
    const traces = values.map((value) => ({
      type: "bar", name: value,
      x: groups.map((g) => g[0].Phase),
      y: groups.map((g) => g.filter((r) => (r[column] || unknownCause(r)) === value).length / g.length),
      text: groups.map((g) => "n=" + g.length), textposition: "none",
      hovertemplate: "%{x}: %{y:.0%} of %{text} phases<extra>" + value + "</extra>",
    }));
    Plotly.react(target, traces, { title: { text: title }, barmode: "stack", yaxis: { tickformat: ".0%" }, margin: { t: 60 } },
      { responsive: true, displaylogo: false });
  }

  function trendChart(rows) {
    const weeks = [...new Set(rows.map((r) => r.week))].sort();
    const traces = [["avg_accuracy", "accuracy"], ["avg_Engagement", "engagement"]].map(([column, name]) => ({
      type: "scatter", mode: "lines+markers", name,
      x: weeks, y: weeks.map((w) => mean(numbers(rows.filter((r) => r.week === w), column))),
      text: weeks.map((w) => "n=" + rows.filter((r) => r.week === w).length),
      hovertemplate: "%{x}: %{y:.1f} (%{text} phases)<extra>" + name + "</extra>",
    }));
    Plotly.react("chart-trend", traces, {
      title: { text: "Weekly trends (phases ending in the week)" }, yaxis: { range: [0, 100] }, margin: { t: 60 },
    }, { responsive: true, displaylogo: false });
  }

  function learnerChart() {
    const learner = document.getElementById("learner").value;
    const rows = DATA.phases.filter((r) => r.UserId === learner).sort((a, b) => (a.end_time < b.end_time ? -1 : 1));
    const traces = [["avg_accuracy", "accuracy"], ["avg_Engagement", "engagement"]].map(([column, name]) => ({
      type: "scatter", mode: "lines+markers", name,
      x: rows.map((r) => r.end_time), y: rows.map((r) => r[column]),
      text: rows.map((r) => r.Phase + " " + r.MilestoneLevel),
      hovertemplate: "%{text}: %{y:.1f}<extra>" + name + "</extra>",
    }));
    Plotly.react("chart-learner", traces, {
      title: { text: "Learner " + learner + ": phases over time" }, yaxis: { range: [0, 100] }, margin: { t: 60 },
    }, { responsive: true, displaylogo: false });
  }

  function table(target, rows, columns) {
    const head = "<tr>" + columns.map((c) => "<th>" + c + "</th>").join("") + "</tr>";
    const body = rows.map((row) => "<tr>" + columns.map((c) => {
      const cell = document.createElement("td");
      const value = row[c];
      cell.textContent = typeof value === "number" ? (Number.isInteger(value) ? value : value.toFixed(2)) : (value ?? "");
      return cell.outerHTML;
    }).join("") + "</tr>").join("");
    document.getElementById(target).innerHTML = rows.length ? head + body : "<tr><td>nothing to show yet</td></tr>";
  }

  function render() {
    const rows = filtered();
    document.getElementById("shown").textContent = rows.length + " of " + DATA.phases.length + " phases shown";
    struggleChart(rows);
    mixChart("chart-emotion", rows, "dominant_emotion", "Emotional patterns: dominant emotion by phase");
    mixChart("chart-state", rows, "engagement_state", "Engagement state by phase");
    trendChart(rows);
  }

  for (const name of FILTERS) document.getElementById("filter-" + name).addEventListener("change", render);
  document.getElementById("learner").addEventListener("change", learnerChart);
  render();
  if (DATA.phases.length) learnerChart();
  table("cohorts", DATA.comparison, DATA.comparison_columns);
  table("risk", DATA.risk, DATA.risk_columns);
})();
