// The SCORE indicators dashboard: reads the indicators API with the viewer's token, draws
// the figures and charts (inline SVG), and re-reads them whenever the service says new
// events were counted. Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

(() => {
  const TOKEN_KEY = "score.dashboard.token";
  const SVG = "http://www.w3.org/2000/svg";
  const REGIONS = {
    la_paz: "La Paz",
    cochabamba: "Cochabamba",
    santa_cruz: "Santa Cruz",
    oruro: "Oruro",
    potosi: "Potosí",
    chuquisaca: "Chuquisaca",
    tarija: "Tarija",
    beni: "Beni",
    pando: "Pando",
  };

  const TEXT = {
    es: {
      title: "Indicadores de SCORE Bolivia",
      skip: "Ir al contenido",
      eyebrow: "OIT · Programa SCORE",
      heading: "Indicadores de SCORE Bolivia",
      "scope.label": "Ámbito",
      "scope.national": "Bolivia (nacional)",
      "scope.line.national": "Bolivia, todas las regiones",
      "scope.line.region": "Región de {region}",
      signout: "Cambiar de token",
      "live.off": "Sin conexión en vivo",
      "live.on": "En vivo: se actualiza solo",
      "live.retrying": "Reconectando…",
      "auth.title": "Acceso",
      "auth.none": "Para ver los indicadores, pegue su token de acceso.",
      "auth.refused": "El token fue rechazado (no es válido, venció o fue revocado). Pegue otro.",
      "auth.label": "Token de acceso",
      "auth.submit": "Ver indicadores",
      "notice.rebuilding":
        "Los indicadores se están recalculando desde el historial de eventos; " +
        "se mostrarán en cuanto terminen.",
      "notice.failed": "No se pudieron leer los indicadores ({status}). Se reintentará.",
      "notice.forbidden": "Este token no permite leer los indicadores de este ámbito.",
      "totals.title": "Totales desde el inicio del programa",
      "ind.enterprises_trained": "Empresas capacitadas",
      "ind.participants_trained": "Trabajadores y gerentes capacitados",
      "ind.employees_benefited": "Empleados beneficiados",
      "ind.trainers_trained": "Formadores SCORE",
      "ind.cost_recovery_pct": "Recuperación de costos",
      "ind.regions_active": "Regiones activas",
      "ind.trainers_certified": "Formadores certificados",
      "ind.modules_completed": "Módulos completados",
      "ind.visits_completed": "Visitas realizadas",
      "ind.improvements_recorded": "Mejoras registradas",
      "ind.case_studies_published": "Estudios de caso",
      "ind.enterprises_trained_direct": "Empresas capacitadas directamente",
      "ind.enterprises_trained_partner": "Empresas alcanzadas por socios",
      "ind.women_share_trainers": "Mujeres entre los formadores",
      "ind.new_regions": "Regiones nuevas",
      "ind.new_chambers": "Cámaras regionales nuevas",
      "detail.enterprises": "directamente {direct} · por socios {partner}",
      "detail.participants": "gerentes {managers} · trabajadores {workers} · mujeres {women}",
      "detail.employees": "mujeres {women} · hombres {men}",
      "detail.trainers": "mujeres {women} ({share}) · hombres {men}",
      "detail.cost": "Módulo 1: {m1} · Módulos 2 a 5: {rest}",
      "targets.title": "Avance hacia las metas de la {phase}",
      "targets.window": "Del {from} al {to}; cuenta lo ocurrido en ese período.",
      "targets.figure": "{actual} de {target} · {percent}",
      "targets.met": "cumplida",
      "targets.progress": "{name}: {actual} de {target}",
      "regions.title": "Empresas capacitadas por región",
      "regions.desc": "Barras horizontales: {list}.",
      "trainers.title": "Mujeres entre los formadores",
      "trainers.caption": "{women} mujeres y {men} hombres de {total} formadores: {share} mujeres.",
      "trainers.none": "Aún no hay formadores registrados.",
      "trainers.women": "Mujeres",
      "trainers.trained": "Formados: {total}",
      "trainers.certified": "Certificados: {total}",
      "trainers.row": "{label}: {women} mujeres, {men} hombres.",
      "trainers.men": "Hombres",
      "months.title": "Capacitación mes a mes",
      "months.note":
        "Empresas por el mes de su primera capacitación; participantes por la fecha de cada " +
        "capacitación. Totales acumulados.",
      "months.enterprises": "Empresas capacitadas",
      "months.participants": "Participantes capacitados",
      "months.data": "Ver los datos por mes",
      "months.month": "Mes",
      "months.enterprises_in": "Empresas (primera capacitación)",
      "months.participants_in": "Participantes",
      "months.enterprises_to_date": "Empresas, acumulado",
      "months.participants_to_date": "Participantes, acumulado",
      "months.desc": "{what}, acumulado, de {from} a {to}: de {first} a {last}.",
      "months.none": "Aún no hay capacitaciones.",
      "milestones.title": "Últimos hitos alcanzados",
      "milestones.none": "Aún no se alcanzó ningún hito.",
      "milestone.facts": "{indicator}: {threshold} · {when}",
      "milestone.generic": "{indicator}: {value} (umbral {threshold}) · {scope}",
      "milestone.national": "Bolivia",
      "asOf": "Datos al {when}",
      "none": "—",
    },
    en: {
      title: "SCORE Bolivia indicators",
      skip: "Skip to content",
      eyebrow: "ILO · SCORE Programme",
      heading: "SCORE Bolivia indicators",
      "scope.label": "Scope",
      "scope.national": "Bolivia (national)",
      "scope.line.national": "Bolivia, all regions",
      "scope.line.region": "{region} region",
      signout: "Use another token",
      "live.off": "Not live",
      "live.on": "Live: updates by itself",
      "live.retrying": "Reconnecting…",
      "auth.title": "Sign in",
      "auth.none": "To see the indicators, paste your access token.",
      "auth.refused": "The token was refused (invalid, expired or revoked). Paste another.",
      "auth.label": "Access token",
      "auth.submit": "Show indicators",
      "notice.rebuilding":
        "The indicators are being recounted from the event history; they will show as " +
        "soon as that is done.",
      "notice.failed": "The indicators could not be read ({status}). Trying again.",
      "notice.forbidden": "This token may not read the indicators of this scope.",
      "totals.title": "Totals since the programme began",
      "ind.enterprises_trained": "Enterprises trained",
      "ind.participants_trained": "Workers and managers trained",
      "ind.employees_benefited": "Employees benefited",
      "ind.trainers_trained": "SCORE trainers",
      "ind.cost_recovery_pct": "Cost recovery",
      "ind.regions_active": "Active regions",
      "ind.trainers_certified": "Certified trainers",
      "ind.modules_completed": "Modules completed",
      "ind.visits_completed": "Visits completed",
      "ind.improvements_recorded": "Improvements recorded",
      "ind.case_studies_published": "Case studies",
      "ind.enterprises_trained_direct": "Enterprises trained directly",
      "ind.enterprises_trained_partner": "Enterprises reached by partners",
      "ind.women_share_trainers": "Women among trainers",
      "ind.new_regions": "New regions",
      "ind.new_chambers": "New regional chambers",
      "detail.enterprises": "directly {direct} · by partners {partner}",
      "detail.participants": "managers {managers} · workers {workers} · women {women}",
      "detail.employees": "women {women} · men {men}",
      "detail.trainers": "women {women} ({share}) · men {men}",
      "detail.cost": "Module 1: {m1} · Modules 2 to 5: {rest}",
      "targets.title": "Progress to the targets of {phase}",
      "targets.window": "From {from} to {to}; counts what happened in that period.",
      "targets.figure": "{actual} of {target} · {percent}",
      "targets.met": "met",
      "targets.progress": "{name}: {actual} of {target}",
      "regions.title": "Enterprises trained by region",
      "regions.desc": "Horizontal bars: {list}.",
      "trainers.title": "Women among trainers",
      "trainers.caption": "{women} women and {men} men of {total} trainers: {share} women.",
      "trainers.none": "No trainers registered yet.",
      "trainers.women": "Women",
      "trainers.trained": "Trained: {total}",
      "trainers.certified": "Certified: {total}",
      "trainers.row": "{label}: {women} women, {men} men.",
      "trainers.men": "Men",
      "months.title": "Training month by month",
      "months.note":
        "Enterprises by the month of their first training; participants by the date of each " +
        "training. Running totals.",
      "months.enterprises": "Enterprises trained",
      "months.participants": "Participants trained",
      "months.data": "Show the monthly figures",
      "months.month": "Month",
      "months.enterprises_in": "Enterprises (first training)",
      "months.participants_in": "Participants",
      "months.enterprises_to_date": "Enterprises, to date",
      "months.participants_to_date": "Participants, to date",
      "months.desc": "{what}, running total, from {from} to {to}: from {first} to {last}.",
      "months.none": "No trainings yet.",
      "milestones.title": "Latest milestones reached",
      "milestones.none": "No milestone reached yet.",
      "milestone.facts": "{indicator}: {threshold} · {when}",
      "milestone.generic": "{indicator}: {value} (threshold {threshold}) · {scope}",
      "milestone.national": "Bolivia",
      "asOf": "Figures as of {when}",
      "none": "—",
    },
  };

  const query = new URLSearchParams(location.search);
  const lang = query.get("lang") === "en" ? "en" : "es";
  const locale = lang === "en" ? "en-GB" : "es-BO";
  const numbers = new Intl.NumberFormat(locale);
  const percents = new Intl.NumberFormat(locale, {
    style: "percent",
    minimumFractionDigits: 0,
    maximumFractionDigits: 1,
  });
  const monthNames = new Intl.DateTimeFormat(locale, {
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });
  const days = new Intl.DateTimeFormat(locale, { dateStyle: "long", timeZone: "UTC" });
  const moments = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "medium" });

  function t(key, values = {}) {
    const template = TEXT[lang][key] ?? TEXT.es[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
  }

  const number = (value) => (value === null || value === undefined ? t("none") : numbers.format(value));
  const percent = (value) =>
    value === null || value === undefined ? t("none") : percents.format(value / 100);
  const regionName = (slug) => REGIONS[slug] ?? slug;
  const indicatorName = (key) => (`ind.${key}` in TEXT[lang] ? t(`ind.${key}`) : key);
  const isPercentKey = (key) => key.endsWith("_pct") || key === "women_share_trainers";
  const $ = (id) => document.getElementById(id);

  // ---- The token: given once in the address, kept for the tab, never left in the address.

  function takeTokenFromAddress() {
    const given = query.get("token");
    if (given) {
      sessionStorage.setItem(TOKEN_KEY, given.trim());
      query.delete("token");
      const rest = query.toString();
      history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  /** What the token says of its holder (role, regions), to choose what to ask for. The
   * claims are not checked here: the API checks the token on every request. */
  function claims() {
    try {
      const part = token().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return {};
    }
  }

  // ---- Reading the API.

  class Refused extends Error {}

  async function get(path) {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${token()}`, Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401) throw new Refused("refused");
    const body = response.ok ? await response.json() : null;
    return { status: response.status, body, retryAfter: Number(response.headers.get("Retry-After")) };
  }

  const state = {
    scopes: [], // "" is national; else region slugs
    scope: null,
    phase: null,
    generation: 0,
    refreshing: false,
    again: false,
    retryTimer: null,
    listening: false,
    stream: null,
    drawn: null, // the answers last drawn, to draw again at another width
  };

  function scopeQuery(extra = {}) {
    const params = new URLSearchParams(extra);
    if (state.scope) params.set("region", state.scope);
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  async function refresh() {
    if (state.refreshing) {
      state.again = true; // read once more when this read is done: something changed meanwhile
      return;
    }
    state.refreshing = true;
    clearTimeout(state.retryTimer);
    const generation = ++state.generation;
    try {
      const regions = state.scopes.filter((scope) => scope !== "");
      const [figures, months, targets, milestones, ...byRegion] = await Promise.all([
        get(`/v1/indicators${scopeQuery()}`),
        get(`/v1/indicators/monthly${scopeQuery()}`),
        state.phase ? get(`/v1/targets${scopeQuery({ phase: state.phase.id })}`) : null,
        get(`/v1/milestones${scopeQuery({ lang, limit: 8 })}`),
        ...regions.map((region) => get(`/v1/indicators?region=${encodeURIComponent(region)}`)),
      ]);
      if (generation !== state.generation) return;
      if (figures.status === 503 || months.status === 503) {
        notice(t("notice.rebuilding"));
        retryIn(figures.retryAfter || months.retryAfter || 5);
        return;
      }
      if (figures.status === 403) {
        notice(t("notice.forbidden"));
        return;
      }
      if (figures.status !== 200) {
        notice(t("notice.failed", { status: figures.status }));
        retryIn(5);
        return;
      }
      notice(null);
      showContent();
      drawTotals(figures.body);
      state.drawn = { figures: figures.body, regions, byRegion, months };
      drawCharts();
      drawTargets(targets);
      drawMilestones(milestones);
      $("as-of").textContent = t("asOf", { when: moments.format(new Date(figures.body.as_of)) });
      document.body.dataset.loaded = String(generation);
    } catch (error) {
      if (error instanceof Refused) {
        askForToken("refused");
      } else {
        notice(t("notice.failed", { status: error.message }));
        retryIn(5);
      }
    } finally {
      state.refreshing = false;
      if (state.again) {
        state.again = false;
        refresh();
      }
    }
  }

  function drawCharts() {
    const { figures, regions, byRegion, months } = state.drawn;
    drawTrainers(figures.indicators);
    drawRegions(regions, byRegion);
    if (months.status === 200) drawMonths(months.body.months);
  }

  function retryIn(seconds) {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(refresh, seconds * 1000);
  }

  // ---- Drawing.

  function notice(text) {
    const element = $("notice");
    element.hidden = !text;
    element.textContent = text ?? "";
  }

  function showContent() {
    $("auth").hidden = true;
    $("content").hidden = false;
    $("sign-out").hidden = false;
  }

  function setFigure(element, value, text) {
    const before = element.dataset.value;
    const now = value === null || value === undefined ? "" : String(value);
    element.textContent = text;
    element.dataset.value = now;
    if (before !== undefined && before !== now) {
      element.classList.remove("changed");
      void element.offsetWidth; // restart the highlight
      element.classList.add("changed");
    }
  }

  function drawTotals(answer) {
    const values = answer.indicators;
    for (const element of document.querySelectorAll("#totals [data-indicator]")) {
      const key = element.dataset.indicator;
      const value = values[key];
      setFigure(element, value, key.endsWith("_pct") ? percent(value) : number(value));
    }
    $("detail-enterprises").textContent = t("detail.enterprises", {
      direct: number(values.enterprises_trained_direct),
      partner: number(values.enterprises_trained_partner),
    });
    $("detail-participants").textContent = t("detail.participants", {
      managers: number(values.managers_women + values.managers_men),
      workers: number(values.workers_women + values.workers_men),
      women: number(values.managers_women + values.workers_women),
    });
    $("detail-employees").textContent = t("detail.employees", {
      women: number(values.employees_benefited_women),
      men: number(values.employees_benefited_men),
    });
    $("detail-trainers").textContent = t("detail.trainers", {
      women: number(values.trainers_trained_women),
      men: number(values.trainers_trained_men),
      share: percent(values.women_share_trainers),
    });
    $("detail-cost").textContent = t("detail.cost", {
      m1: percent(values.cost_recovery_pct_module1),
      rest: percent(values.cost_recovery_pct_modules2to5),
    });
  }

  function drawTargets(answer) {
    const section = $("targets");
    // Hidden where the service has no targets endpoint (404), or the token may not read it.
    if (!answer || answer.status !== 200 || !state.phase) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    $("targets-title").textContent = t("targets.title", { phase: phaseTitle(state.phase) });
    $("targets-window").textContent = t("targets.window", {
      from: days.format(new Date(state.phase.starts_on)),
      to: days.format(new Date(state.phase.ends_on)),
    });
    const list = $("target-list");
    list.replaceChildren(
      ...answer.body.targets.map((target) => {
        const isPercent = isPercentKey(target.key);
        const show = isPercent ? percent : number;
        const name = indicatorName(target.key);
        const item = el("li", { class: target.met ? "met" : null, "data-target": target.key });
        const head = el("div", { class: "target-head" });
        const label = el("span", { class: "target-name", id: `target-${target.key}` }, name);
        if (target.met) label.append(el("span", { class: "badge" }, t("targets.met")));
        const figure = el(
          "span",
          { class: "target-figure" },
          t("targets.figure", {
            actual: show(target.actual),
            target: show(target.target),
            percent: percent(target.percent),
          }),
        );
        head.append(label, figure);
        const fill = el("div", { class: "bar-fill" });
        fill.style.width = `${Math.max(0, Math.min(100, target.percent ?? 0))}%`;
        const bar = el(
          "div",
          {
            class: "bar",
            role: "progressbar",
            "aria-labelledby": `target-${target.key}`,
            "aria-valuemin": "0",
            "aria-valuemax": String(target.target),
            "aria-valuenow": String(Math.min(target.actual ?? 0, target.target)),
            "aria-valuetext": t("targets.progress", {
              name,
              actual: show(target.actual),
              target: show(target.target),
            }),
          },
          fill,
        );
        item.append(head, bar);
        return item;
      }),
    );
  }

  /** A phase's title, in the page's language where the configuration's is "Phase …". */
  function phaseTitle(phase) {
    return lang === "es" ? phase.title.replace(/^Phase\b/, "Fase") : phase.title;
  }

  function drawRegions(regions, answers) {
    const rows = regions.map((region, index) => {
      const answer = answers[index];
      const value = answer && answer.status === 200 ? answer.body.indicators.enterprises_trained : null;
      return { region, value };
    });
    const chart = $("region-chart");
    const width = widthOf(chart);
    const rowHeight = 30;
    const labelWidth = 110;
    const valueWidth = 44;
    const height = rows.length * rowHeight + 8;
    const most = Math.max(1, ...rows.map((row) => row.value ?? 0));
    const list = rows.map((row) => `${regionName(row.region)} ${number(row.value)}`).join("; ");
    const svg = chartFrame(width, height, t("regions.title"), t("regions.desc", { list }));
    rows.forEach((row, index) => {
      const y = index * rowHeight + 4;
      const barWidth = ((width - labelWidth - valueWidth) * (row.value ?? 0)) / most;
      const group = svgEl("g", { "data-region": row.region, "data-value": row.value ?? "" });
      group.append(
        svgEl("text", { x: 0, y: y + 19, class: "axis-label" }, regionName(row.region)),
        svgEl("rect", {
          x: labelWidth,
          y: y + 5,
          width: Math.max(barWidth, 2),
          height: rowHeight - 12,
          rx: 3,
          class: row.value ? "bar-region" : "bar-none",
        }),
        svgEl("text", { x: labelWidth + Math.max(barWidth, 2) + 6, y: y + 19 }, number(row.value)),
      );
      svg.append(group);
    });
    chart.replaceChildren(svg);
    $("regions").hidden = rows.length === 0;
  }

  function drawTrainers(values) {
    const rows = [
      {
        label: t("trainers.trained", { total: number(values.trainers_trained) }),
        women: values.trainers_trained_women,
        men: values.trainers_trained_men,
      },
      {
        label: t("trainers.certified", { total: number(values.trainers_certified) }),
        women: values.trainers_certified_women,
        men: values.trainers_certified_men,
      },
    ];
    const share = values.women_share_trainers;
    const caption = values.trainers_trained
      ? t("trainers.caption", {
          women: number(values.trainers_trained_women),
          men: number(values.trainers_trained_men),
          total: number(values.trainers_trained),
          share: percent(share),
        })
      : t("trainers.none");
    $("trainer-caption").textContent = caption;
    const chart = $("trainer-chart");
    const width = widthOf(chart);
    const rowHeight = 86;
    const description = rows
      .map((row) =>
        t("trainers.row", { label: row.label, women: number(row.women), men: number(row.men) }),
      )
      .join(" ");
    const svg = chartFrame(width, rows.length * rowHeight, t("trainers.title"), `${caption} ${description}`);
    rows.forEach((row, index) => {
      const y = index * rowHeight;
      const total = row.women + row.men;
      const womenWidth = total ? (width * row.women) / total : 0;
      const womenShare = total ? (100 * row.women) / total : null;
      svg.append(
        svgEl("text", { x: 0, y: y + 16 }, row.label),
        svgEl("rect", { x: 0, y: y + 24, width: womenWidth, height: 26, class: "women" }),
        svgEl("rect", {
          x: womenWidth,
          y: y + 24,
          width: width - womenWidth,
          height: 26,
          class: total ? "men" : "bar-none",
        }),
        svgEl(
          "text",
          { x: 0, y: y + 70, class: "axis" },
          `${t("trainers.women")} ${number(row.women)} (${percent(womenShare)})`,
        ),
        svgEl(
          "text",
          { x: width, y: y + 70, "text-anchor": "end", class: "axis" },
          `${t("trainers.men")} ${number(row.men)} (${percent(total ? 100 - womenShare : null)})`,
        ),
      );
    });
    chart.dataset.share = share ?? "";
    chart.replaceChildren(svg);
  }

  function drawMonths(months) {
    drawMonthChart($("month-chart-enterprises"), months, "enterprises_trained_to_date", "months.enterprises");
    drawMonthChart($("month-chart-participants"), months, "participants_trained_to_date", "months.participants");
    const body = $("month-table").tBodies[0];
    body.replaceChildren(
      ...months
        .slice()
        .reverse()
        .map((month) => {
          const row = el("tr", { "data-month": month.month });
          row.append(
            el("th", { scope: "row" }, monthLabel(month.month)),
            el("td", {}, number(month.enterprises_trained)),
            el("td", {}, number(month.participants_trained)),
            el("td", {}, number(month.enterprises_trained_to_date)),
            el("td", {}, number(month.participants_trained_to_date)),
          );
          return row;
        }),
    );
  }

  function monthLabel(month) {
    const [year, number] = month.split("-").map(Number);
    return monthNames.format(new Date(Date.UTC(year, number - 1, 1)));
  }

  function drawMonthChart(chart, months, key, title) {
    const width = widthOf(chart);
    const height = 200;
    const left = 44;
    const bottom = 24;
    const top = 10;
    const right = 10;
    if (months.length === 0) {
      const svg = chartFrame(width, 60, t(title), t("months.none"));
      svg.append(svgEl("text", { x: 0, y: 30, class: "empty" }, t("months.none")));
      chart.replaceChildren(svg);
      return;
    }
    const first = months[0];
    const last = months[months.length - 1];
    const most = Math.max(1, last[key]);
    const description = t("months.desc", {
      what: t(title),
      from: monthLabel(first.month),
      to: monthLabel(last.month),
      first: number(first[key]),
      last: number(last[key]),
    });
    const svg = chartFrame(width, height, t(title), description);
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const x = (index) => left + (months.length === 1 ? plotWidth / 2 : (plotWidth * index) / (months.length - 1));
    const y = (value) => top + plotHeight - (plotHeight * value) / most;
    for (const tick of [0, most / 2, most]) {
      const rounded = Math.round(tick);
      svg.append(
        svgEl("line", { x1: left, x2: width - right, y1: y(rounded), y2: y(rounded), class: "grid" }),
        svgEl("text", { x: left - 6, y: y(rounded) + 4, "text-anchor": "end", class: "axis" }, number(rounded)),
      );
    }
    const points = months.map((month, index) => `${x(index).toFixed(1)},${y(month[key]).toFixed(1)}`);
    svg.append(
      svgEl("polygon", {
        points: `${x(0).toFixed(1)},${y(0)} ${points.join(" ")} ${x(months.length - 1).toFixed(1)},${y(0)}`,
        class: "area",
      }),
      svgEl("polyline", { points: points.join(" "), class: "line" }),
      svgEl("text", { x: left, y: height - 6, class: "axis" }, monthLabel(first.month)),
      svgEl("text", { x: width - right, y: height - 6, "text-anchor": "end", class: "axis" }, monthLabel(last.month)),
    );
    chart.dataset.last = String(last[key]);
    chart.replaceChildren(svg);
  }

  function drawMilestones(answer) {
    const section = $("milestones");
    if (!answer || answer.status !== 200) {
      section.hidden = true; // no milestones endpoint here (404), or not for this token
      return;
    }
    section.hidden = false;
    const latest = (answer.body.milestones ?? [])
      .slice()
      .sort((a, b) => String(b.reached_at).localeCompare(String(a.reached_at)))
      .slice(0, 8);
    const list = $("milestone-list");
    if (latest.length === 0) {
      list.replaceChildren(el("li", {}, t("milestones.none")));
      return;
    }
    list.replaceChildren(
      ...latest.map((milestone) => {
        const scope =
          !milestone.scope || milestone.scope === "national"
            ? t("milestone.national")
            : regionName(milestone.scope);
        // The programme's own title of the milestone, in the page's language; else the facts.
        const text =
          milestone.title && milestone.title !== milestone.milestone
            ? `${milestone.title} · ${scope}`
            : t("milestone.generic", {
                indicator: indicatorName(milestone.indicator),
                value: number(Number(milestone.value)),
                threshold: number(Number(milestone.threshold)),
                scope,
              });
        const item = el("li", { "data-milestone": milestone.milestone_id }, text);
        const show = isPercentKey(milestone.indicator) ? percent : number;
        const facts = t("milestone.facts", {
          indicator: indicatorName(milestone.indicator),
          threshold: show(Number(milestone.threshold)),
          value: show(Number(milestone.value)),
          when: moments.format(new Date(milestone.reached_at)),
        });
        item.append(el("span", { class: "milestone-when" }, facts));
        return item;
      }),
    );
  }

  /** A chart is drawn at its box's width, so that its text is of the page's size. */
  function widthOf(chart) {
    return Math.max(260, Math.round(chart.clientWidth || 420));
  }

  function chartFrame(width, height, title, description) {
    const id = `c${Math.random().toString(36).slice(2, 9)}`;
    const svg = svgEl("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": `${id}-t ${id}-d`,
      preserveAspectRatio: "xMinYMin meet",
    });
    svg.append(svgEl("title", { id: `${id}-t` }, title), svgEl("desc", { id: `${id}-d` }, description));
    return svg;
  }

  function svgEl(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function el(name, attributes, ...children) {
    const element = document.createElement(name);
    for (const [key, value] of Object.entries(attributes)) {
      if (value !== null && value !== undefined) element.setAttribute(key, value);
    }
    element.append(...children);
    return element;
  }

  // ---- Live: the service's stream of changes, read with the token in a header.

  function setLive(mode) {
    const live = $("live");
    live.dataset.state = mode;
    $("live-text").textContent = t(`live.${mode}`);
  }

  async function listen() {
    if (state.listening) return;
    state.listening = true;
    let wait = 1000;
    while (token()) {
      const controller = new AbortController();
      state.stream = controller;
      try {
        const response = await fetch("/v1/indicators/changes", {
          headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: controller.signal,
        });
        if (response.status === 401) {
          askForToken("refused");
          break;
        }
        if (!response.ok || !response.body) throw new Error(String(response.status));
        setLive("on");
        wait = 1000;
        await readEvents(response.body, (event) => {
          if (event.name === "changed") refresh();
          if (event.retry) wait = event.retry;
        });
      } catch (error) {
        if (controller.signal.aborted) break;
      }
      setLive("retrying");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 15000);
    }
    state.listening = false;
    state.stream = null;
    setLive("off");
  }

  /** Calls `handle` with each server-sent event of `body` until the stream ends. */
  async function readEvents(body, handle) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { name: "message", data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue; // a heartbeat
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.name = text;
          else if (field === "data") event.data += text;
          else if (field === "retry" && /^\d+$/.test(text)) event.retry = Number(text);
        }
        if (event.data || event.retry) handle(event);
      }
    }
  }

  // ---- Starting.

  function askForToken(reason) {
    if (state.stream) state.stream.abort();
    sessionStorage.removeItem(TOKEN_KEY);
    $("content").hidden = true;
    $("sign-out").hidden = true;
    notice(null);
    $("auth").hidden = false;
    $("auth-reason").textContent = t(reason === "refused" ? "auth.refused" : "auth.none");
    $("scope").disabled = true;
    $("token-input").value = "";
    $("token-input").focus();
  }

  async function start() {
    const who = claims();
    // A chamber reads its own regions only: its figures are those of one of its regions.
    const regions = who.role === "chamber" ? (who.regions ?? []) : Object.keys(REGIONS);
    state.scopes = who.role === "chamber" ? regions : ["", ...regions];
    if (!state.scopes.includes(state.scope)) state.scope = state.scopes[0] ?? "";
    const select = $("scope");
    select.replaceChildren(
      ...state.scopes.map((scope) =>
        el("option", { value: scope }, scope === "" ? t("scope.national") : regionName(scope)),
      ),
    );
    select.value = state.scope;
    select.disabled = state.scopes.length < 2;
    describeScope();
    try {
      const phases = await get("/v1/phases");
      state.phase =
        phases.status === 200
          ? (phases.body.phases.find((phase) => phase.id === phases.body.current) ?? null)
          : null;
    } catch (error) {
      if (error instanceof Refused) {
        askForToken("refused");
        return;
      }
      state.phase = null;
    }
    await refresh();
    listen();
  }

  function describeScope() {
    $("scope-line").textContent = state.scope
      ? t("scope.line.region", { region: regionName(state.scope) })
      : t("scope.line.national");
  }

  function translatePage() {
    document.documentElement.lang = lang;
    for (const element of document.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    const other = lang === "en" ? "es" : "en";
    const switcher = $("lang-switch");
    const params = new URLSearchParams(query);
    if (other === "es") params.delete("lang");
    else params.set("lang", other);
    const rest = params.toString();
    switcher.href = location.pathname + (rest ? `?${rest}` : "");
    switcher.hreflang = other;
    switcher.lang = other;
    switcher.textContent = other === "en" ? "English" : "Español";
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromAddress();
    translatePage();
    $("auth-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const given = $("token-input").value.trim();
      if (!given) return;
      sessionStorage.setItem(TOKEN_KEY, given);
      $("auth").hidden = true;
      start();
    });
    $("sign-out").addEventListener("click", () => askForToken("none"));
    $("scope").addEventListener("change", (event) => {
      state.scope = event.target.value;
      describeScope();
      refresh();
    });
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(() => state.drawn && drawCharts(), 150);
    });
    if (token()) start();
    else askForToken("none");
  });
})();
