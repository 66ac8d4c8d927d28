'use strict';

/*
 * The classroom page: watch Stable Diffusion turn noise into a picture, one step at a time.
 *
 * The server streams each run over a WebSocket (/ws) as JSON messages:
 *   hello (once) → for each run: queued … → started → step × N → done | failed | busy
 * Every step carries three pictures — the noisy latent x_t, the noise ε the UNet predicted in
 * it, and the clean picture x̂₀ that prediction implies — plus the step's noise level and one
 * cross-attention map per prompt word. The page keeps every frame so the class can scrub back.
 *
 * Sections of this file:
 *   1. helpers and the attention colour map    5. the Generate panel, with its word chips
 *   2. connection and status                   6. the Compare panel
 *   3. runs and the server's messages          7. the Forward noising panel
 *   4. step views and the player               8. the class's gallery
 *                                              9. tabs and start-up
 */

// ───────────────────────── 1. Helpers and the attention colour map ─────────────────────────

/** Playback pace: 8 frames per second, slow enough for a class to follow every step. */
const FRAME_MS = 125;
/** How long to wait before reconnecting when the connection drops. */
const RECONNECT_MS = 3000;
/** What the server accepts as an upload for the noising panel. */
const UPLOAD_BYTES = 4 * 1024 * 1024;
const UPLOAD_TYPES = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg' };
/** The settings a shared link carries: the same names in the URL and in the server's JSON. */
const URL_SETTINGS = ['prompt', 'negative_prompt', 'seed', 'steps', 'cfg', 'scheduler'];
/** The form fields those settings live in (the sampler is filled once the server names them). */
const SETTING_FIELDS = { prompt: 'prompt', negative_prompt: 'negative-prompt', seed: 'seed', steps: 'steps', cfg: 'cfg' };

const $ = (id) => document.getElementById(id);

const plural = (count, word) => `${count} ${word}${count === 1 ? '' : 's'}`;

const SUPERSCRIPTS = { '-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' };

/**
 * A number for people: three significant digits (ᾱ_t = 0.0365, σ = 5.13), whole numbers as
 * they are (t = 951), and powers of ten where the SNR gets very small (4.68×10⁻³).
 */
function formatNumber(value) {
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '–';
  const size = Math.abs(value);
  if (Number.isInteger(value) && size < 1e5) return value.toLocaleString('en-US');
  if (size >= 1e5 || size < 1e-3) {
    const [mantissa, exponent] = value.toExponential(2).split('e');
    const power = [...exponent.replace('+', '')].map((character) => SUPERSCRIPTS[character]).join('');
    return `${mantissa}×10${power}`;
  }
  if (size >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(3);
}

const formatSeconds = (seconds) => `${formatNumber(seconds)} s`;
const formatShare = (share) => (share === undefined ? '–' : `${(share * 100).toFixed(1)}%`);

/** Shows `text` in an error or notice element, or hides it when there is none. */
function showMessage(element, text) {
  element.hidden = !text;
  element.textContent = text ?? '';
}

/** Shows a picture (a data URL or a path) in an <img>, or the empty frame when there is none yet. */
function setPicture(img, src) {
  const figure = img.closest('figure');
  if (src) {
    if (img.getAttribute('src') !== src) img.src = src;
    figure.classList.remove('empty');
  } else {
    img.removeAttribute('src');
    figure.classList.add('empty');
  }
}

/** GETs or POSTs and returns the JSON answer; a 4xx/5xx answer throws the server's `error` text. */
async function fetchJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `the server answered ${response.status}`);
  return body;
}

/*
 * The 'inferno' colour map (black → purple → orange → pale yellow) for attention maps: dark is
 * little attention, bright is much, and it stays readable in grey and for colour-blind eyes.
 * Each channel is a degree-6 polynomial fit of matplotlib's table:
 *   c(v) = c₀ + c₁·v + c₂·v² + … + c₆·v⁶,  v ∈ [0, 1]
 */
const INFERNO_COEFFICIENTS = [
  [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
  [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
  [11.60249308247187, -3.972853965665698, -15.9423941062914],
  [-41.70399613139459, 17.43639888205313, 44.35414519872813],
  [77.162935699427, -33.40235894210092, -81.80730925738993],
  [-71.31942824499214, 32.62606426397723, 73.20951985803202],
  [25.13112622477341, -12.24266895238567, -23.07032500287172],
];

function infernoColour(v) {
  return [0, 1, 2].map((channel) => {
    // Horner's rule, from c₆ down to c₀: (((c₆·v + c₅)·v + c₄)·v + …)·v + c₀.
    const value = INFERNO_COEFFICIENTS.reduceRight((sum, coefficients) => sum * v + coefficients[channel], 0);
    return Math.round(255 * Math.min(1, Math.max(0, value)));
  });
}

/** The colour of every attention byte 0…255, computed once. */
const INFERNO = Array.from({ length: 256 }, (_, byte) => infernoColour(byte / 255));

/**
 * Paints one word's attention map (bytes 0…255, row-major, `width`×`height` cells) into the
 * overlay canvas at one pixel per cell; CSS stretches the canvas over x̂₀ with smoothing, so
 * the few cells become soft blobs. Weak attention stays mostly see-through.
 */
function drawAttention(canvas, map, width, height) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const pixels = context.createImageData(width, height);
  map.forEach((value, cell) => {
    const [red, green, blue] = INFERNO[value];
    pixels.data.set([red, green, blue, 70 + Math.round(value * 0.55)], cell * 4);
  });
  context.putImageData(pixels, 0, 0);
}

// ───────────────────────── 2. Connection and status ─────────────────────────

const connection = {
  socket: null,       // the WebSocket in use (open or opening)
  ready: false,       // true once this socket's hello arrived
  helloSeen: false,   // the first hello fills in defaults; later ones (after a reconnect) do not
  reconnectTimer: 0,
  // A shared link (?prompt=…) starts its run as soon as the server has said hello.
  autoStart: new URLSearchParams(location.search).has('prompt'),
};

/** Meanings of the WebSocket close codes a class may meet. */
const CLOSE_MEANINGS = {
  1000: 'the server closed it',
  1001: 'the server is stopping',
  1006: 'the connection was lost — is the server running?',
  1009: 'a message was too big',
  1011: 'the server hit an unexpected error',
};

/** Shows what the page is doing: `data-state` for styles and scripts, the text for people. */
function setStatus(state, text) {
  const status = $('status');
  status.dataset.state = state;
  status.textContent = text;
}

function connect() {
  clearTimeout(connection.reconnectTimer);
  $('reconnect').hidden = true;
  setStatus('connecting', 'Connecting to the server…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);
  socket.addEventListener('message', (event) => receive(event.data));
  socket.addEventListener('close', (event) => connectionClosed(socket, event));
  connection.socket = socket;
}

function send(message) {
  connection.socket.send(JSON.stringify(message));
}

/** The server forgets a page's runs when its connection closes: say so, and try again soon. */
function connectionClosed(socket, event) {
  if (socket !== connection.socket) return;
  connection.socket = null;
  connection.ready = false;
  abandonRuns('the connection to the server closed');
  const why = event.reason || CLOSE_MEANINGS[event.code] || 'no reason given';
  setStatus('closed', `Connection closed (code ${event.code}: ${why}). Reconnecting in ${RECONNECT_MS / 1000} s…`);
  $('reconnect').hidden = false;
  updateButtons();
  connection.reconnectTimer = setTimeout(connect, RECONNECT_MS);
}

const HANDLERS = {
  hello: onHello, queued: onQueued, started: onStarted, step: onStep, done: onDone, failed: onFailed, busy: onBusy,
  class: onClass,
};

function receive(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    setStatus('failed', 'The server sent a message that is not JSON.');
    return;
  }
  HANDLERS[message.type]?.(message);
}

/** The server names its model and what it draws best with; the first hello fills the form's defaults. */
function onHello({ model }) {
  connection.ready = true;
  showModel(model);
  fillSchedulers(model.schedulers);
  if (!connection.helloSeen) {
    connection.helloSeen = true;
    applyDefaults(model);
    fillPictures(model.pictures);
  }
  setStatus('idle', 'Ready: type a prompt and press Generate.');
  updateButtons();
  if (connection.autoStart) {
    connection.autoStart = false;
    generate();
  }
}

function showModel(model) {
  $('model-name').textContent = `Model: ${model.name} · ${model.side}×${model.side} pictures · `
    + `${model.vocabulary.toLocaleString('en-US')} tokens in its vocabulary`;
  showMessage($('prompt-hint'), model.isShapesModel
    ? 'This small model only learned the words of its training captions (coloured shapes in places): start from the example prompt and change one word at a time.'
    : null);
}

// ───────────────────────── 3. Runs and the server's messages ─────────────────────────

/*
 * A run is one generation the page asked for:
 *   { label, settings, presenter, phase, position, steps, words, mapWidth, mapHeight,
 *     notice, frames, result, message, superseded, stopRequested }
 * Its phase goes pending (not sent yet) → sent → queued → running → done | failed | busy | stopped.
 * The presenter is the panel that shows it: `started(run)` and `update(run)`; a panel that has
 * moved on to a newer run ignores updates about an older one.
 */

/** Runs the server may still send messages about, by label. */
const runs = new Map();
let runCount = 0;
/** What the page is doing now: one generation, or the two runs of a comparison. */
let activity = null;

const FINISHED = new Set(['done', 'failed', 'busy', 'stopped']);
const isFinished = (run) => FINISHED.has(run.phase);

function newRun(kind, settings, presenter) {
  runCount += 1;
  return {
    label: `${kind}-${runCount}`, settings, presenter, phase: 'pending', position: 0,
    steps: 0, words: [], mapWidth: 0, mapHeight: 0, notice: null, frames: [],
    result: null, message: '', superseded: false, stopRequested: false,
  };
}

/**
 * Makes `newRuns` the page's activity. The server keeps at most two waiting runs per page, so
 * runs still going are cancelled first, and the new ones are sent once the server has ended
 * every old one (a cancel and a generate sent together could otherwise cross on the server).
 */
function startActivity(newRuns) {
  activity = { runs: newRuns };
  const going = [...runs.values()].filter((run) => !run.superseded);
  if (going.length > 0) {
    going.forEach((run) => {
      run.superseded = true;
      run.stopRequested = true;
    });
    send({ type: 'cancel' });
  }
  sendActivityWhenClear();
  showActivityStatus();
  updateButtons();
}

function sendActivityWhenClear() {
  if (!activity || runs.size > 0 || !connection.ready) return;
  for (const run of activity.runs.filter((candidate) => candidate.phase === 'pending')) {
    run.phase = 'sent';
    runs.set(run.label, run);
    send({ type: 'generate', run: run.label, settings: run.settings });
  }
}

/** The Stop button: runs not sent yet are dropped here, the others are cancelled on the server. */
function stopActivity() {
  for (const run of activity.runs.filter((candidate) => candidate.phase === 'pending')) {
    run.phase = 'stopped';
    run.presenter.update(run);
  }
  for (const run of runs.values()) run.stopRequested = true;
  if (runs.size > 0) send({ type: 'cancel' });
  showActivityStatus();
  updateButtons();
}

/** The run a message is about, unless a newer activity replaced it (then the message is ignored). */
function shownRun(label) {
  const run = runs.get(label);
  return run && !run.superseded ? run : null;
}

function onQueued({ run: label, position }) {
  const run = shownRun(label);
  if (!run) return;
  run.phase = 'queued';
  run.position = position;
  runChanged(run);
}

function onStarted(message) {
  const run = shownRun(message.run);
  if (!run) return;
  Object.assign(run, {
    phase: 'running', steps: message.steps, words: message.words,
    mapWidth: message.mapWidth, mapHeight: message.mapHeight, notice: message.notice ?? null,
  });
  run.presenter.started(run);
  runChanged(run);
}

function onStep(message) {
  const run = shownRun(message.run);
  if (!run) return;
  run.frames.push(message);
  runChanged(run);
}

function onDone(message) {
  const run = runs.get(message.run);
  if (!run) return;
  run.result = message;
  endRun(run, 'done');
}

function onFailed(message) {
  runFailed(message, 'failed');
}

function onBusy(message) {
  runFailed(message, 'busy');
}

function runFailed({ run: label, message }, phase) {
  const run = runs.get(label);
  if (run) {
    run.message = message;
    endRun(run, run.stopRequested && message === 'cancelled' ? 'stopped' : phase);
  } else if (label === null || label === undefined) {
    // Not about one run (e.g. a message the server could not read): just say it.
    setStatus(phase, `${phase === 'busy' ? 'Server busy' : 'Failed'}: ${message}`);
  }
}

function endRun(run, phase) {
  runs.delete(run.label);
  run.phase = phase;
  run.presenter.update(run);   // its panel may still show it, even when a newer activity replaced it
  if (!run.superseded) showActivityStatus();
  sendActivityWhenClear();
  updateButtons();
}

function runChanged(run) {
  run.presenter.update(run);
  showActivityStatus();
  updateButtons();
}

/** When the connection closes the server drops the page's runs; end them here too. */
function abandonRuns(reason) {
  const unsent = activity ? activity.runs.filter((run) => run.phase === 'pending') : [];
  for (const run of [...runs.values(), ...unsent]) {
    run.phase = 'failed';
    run.message = reason;
    run.presenter.update(run);
  }
  runs.clear();
}

const queueText = (position) => (position === 0
  ? 'Queued: yours is next.'
  : `Queued: ${plural(position, 'run')} ahead of yours.`);

/** One run's state in words. */
function describeRun(run) {
  switch (run.phase) {
    case 'pending': return 'Waiting for the previous run to stop…';
    case 'sent': return 'Sent to the server…';
    case 'queued': return queueText(run.position);
    case 'running': return `Drawing: ${run.frames.length} of ${plural(run.steps, 'step')} done…`;
    case 'done': return `Done in ${formatSeconds(run.result.seconds)}.`;
    case 'stopped': return 'Stopped.';
    case 'busy': return `Server busy: ${run.message}`;
    default: return `Failed: ${run.message}`;
  }
}

/** The header's status for the current activity: its most telling run decides. */
function showActivityStatus() {
  if (!activity) return;
  const list = activity.runs;
  const pick = (...phases) => list.find((run) => phases.includes(run.phase));
  const problem = pick('failed', 'busy', 'stopped');
  if (problem) {
    setStatus(problem.phase === 'stopped' ? 'idle' : problem.phase, describeRun(problem));
  } else if (list.every((run) => run.phase === 'done')) {
    setStatus('done', `Done in ${list.map((run) => formatSeconds(run.result.seconds)).join(' and ')}.`);
  } else {
    const current = pick('running') ?? pick('queued') ?? pick('sent') ?? pick('pending');
    setStatus(current.phase === 'running' ? 'running' : 'queued', describeRun(current));
  }
}

function updateButtons() {
  $('generate').disabled = !connection.ready;
  $('compare-start').disabled = !connection.ready;
  $('stop').disabled = !connection.ready || !activity || activity.runs.every(isFinished);
}

// ───────────────────────── 4. Step views and the player ─────────────────────────

/**
 * One run's pictures and numbers at a chosen step: x_t, ε and x̂₀ side by side, with the
 * step's timestep t, ᾱ_t (how much of the picture is left) and σ_t = √((1−ᾱ_t)/ᾱ_t).
 * `parts` = { noisy, noise, clean: <img>, stats: element with [data-stat] children };
 * `afterRender(frame)` lets a panel draw more (the attention overlay).
 */
class StepView {
  constructor(parts, afterRender = () => {}) {
    this.parts = parts;
    this.afterRender = afterRender;
    this.run = null;
  }

  get frameCount() { return this.run ? this.run.frames.length : 0; }

  get isLive() { return this.run !== null && !isFinished(this.run); }

  /** The frame at `index`, or the run's last one when it has fewer steps than the slider. */
  frameAt(index) {
    const frames = this.run ? this.run.frames : [];
    return frames[Math.min(index, frames.length - 1)] ?? null;
  }

  render(index) {
    const frame = this.frameAt(index);
    for (const name of ['noisy', 'noise', 'clean']) setPicture(this.parts[name], frame?.[name]);
    const values = frame ? {
      step: `${frame.index + 1} / ${frame.count}`,
      timestep: formatNumber(frame.timestep),
      alphaBar: formatNumber(frame.alphaBar),
      sigma: formatNumber(frame.sigma),
    } : {};
    for (const element of this.parts.stats.querySelectorAll('[data-stat]')) {
      element.textContent = values[element.dataset.stat] ?? '–';
    }
    this.afterRender(frame);
  }
}

/**
 * One slider, a Play/Pause button and a frame counter driving one or more step views (two in
 * Compare, moved together by step index).
 *
 * New frames are not jumped to: while `following`, the player walks towards the newest frame
 * at most 8 frames a second. A small model sends all its steps in a fraction of a second, and
 * this lets the class watch the picture emerge; a slow model's steps show as soon as they come.
 * Play replays from the start at the same pace and stops at the last frame.
 */
class Player {
  constructor({ slider, button, counter, views, describeCount }) {
    Object.assign(this, { slider, button, counter, views, describeCount });
    this.index = 0;
    this.following = false;
    this.timer = 0;
    this.lastMove = 0;
    this.framesSeen = 0;
    slider.addEventListener('input', () => {
      this.index = Number(slider.value);
      this.stopWalking();
    });
    button.addEventListener('click', () => (this.following ? this.stopWalking() : this.play()));
  }

  get frameCount() { return Math.max(0, ...this.views.map((view) => view.frameCount)); }

  get isLive() { return this.views.some((view) => view.isLive); }

  /** A new run begins: show its first frame and follow the frames as they arrive. */
  restart() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.index = 0;
    this.framesSeen = 0;
    this.following = true;
    this.update();
  }

  /** Frames arrived, a run ended or the user moved: refresh everything and keep walking. */
  update() {
    const count = this.frameCount;
    if (this.framesSeen === 0 && count > 0) this.lastMove = performance.now();  // frame 0 is on screen from now
    this.framesSeen = count;
    this.slider.max = String(Math.max(0, count - 1));
    this.slider.disabled = count < 2;
    this.button.disabled = count < 2;
    this.counter.textContent = this.describeCount();
    this.render();
    if (this.following) this.walk();
    this.button.textContent = this.following ? '❚❚ Pause' : '▶ Play';
  }

  render() {
    this.slider.value = String(this.index);
    for (const view of this.views) view.render(this.index);
  }

  play() {
    if (this.index >= this.frameCount - 1) this.index = 0;
    this.lastMove = performance.now();
    this.following = true;
    this.update();
  }

  stopWalking() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.following = false;
    this.update();
  }

  /** One frame forwards every FRAME_MS until the newest; at the end of a finished run, stop. */
  walk() {
    if (this.timer) return;
    if (this.index >= this.frameCount - 1) {
      if (!this.isLive) this.following = false;
      return;
    }
    const wait = Math.max(0, this.lastMove + FRAME_MS - performance.now());
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.index += 1;
      this.lastMove = performance.now();
      this.update();
    }, wait);
  }
}

/**
 * The finished picture and its save buttons; empty until the run is done. `parts.info`, where a
 * panel has one, says how long the run took or, until then, how it is going.
 */
function showResult(parts, run, waitingText) {
  const done = run.phase === 'done';
  setPicture(parts.img, done ? run.result.image : null);
  if (parts.info) parts.info.textContent = done ? `Finished in ${formatSeconds(run.result.seconds)}.` : waitingText;
  parts.png.hidden = !done;
  parts.gif.hidden = !done;
  if (done) {
    parts.png.href = run.result.png;
    parts.gif.href = run.result.gif;
  }
}

// ───────────────────────── 5. The Generate panel ─────────────────────────

let mainView;
let mainPlayer;
const mainResult = {};
/** The word whose attention map lies over x̂₀ (an index into the run's words), or null. */
let selectedWord = null;

const mainPresenter = {
  started(run) {
    showWordChips(run.words);
    showMessage($('notice'), run.notice);
  },
  update(run) {
    if (mainView.run !== run) return;
    mainPlayer.update();
    showResult(mainResult, run, describeRun(run));
  },
};

function setUpGeneratePanel() {
  mainView = new StepView(
    { noisy: $('img-noisy'), noise: $('img-noise'), clean: $('img-clean'), stats: $('step-stats') },
    showWordsAt,
  );
  mainPlayer = new Player({
    slider: $('step-slider'), button: $('play'), counter: $('frame-count'), views: [mainView],
    describeCount: describeMainCount,
  });
  Object.assign(mainResult, { img: $('final'), info: $('final-info'), png: $('save-png'), gif: $('save-gif') });
  $('settings').addEventListener('submit', (event) => {
    event.preventDefault();
    generate();
  });
  $('settings').addEventListener('input', () => {
    fillSwapWords();
    showCompareBase();
  });
  $('random-seed').addEventListener('click', () => { $('seed').value = String(Math.floor(Math.random() * 2 ** 32)); });
  $('stop').addEventListener('click', stopActivity);
  $('copy-link').addEventListener('click', copyLink);
}

/** "21 steps" once a run is over; "5 steps of 21 so far" while it runs (the count comes first). */
function describeMainCount() {
  const run = mainView.run;
  const received = plural(run ? run.frames.length : 0, 'step');
  return run && run.phase === 'running' ? `${received} of ${run.steps} so far` : received;
}

function generate() {
  const settings = readSettings();
  if (!settings) return;
  history.replaceState(null, '', settingsUrl(settings));
  const run = newRun('main', settings, mainPresenter);
  mainView.run = run;
  showWordChips(null);
  showMessage($('notice'), null);
  mainPlayer.restart();
  startActivity([run]);
  mainPresenter.update(run);
}

/** The form's settings as the server's JSON, or null (after pointing at the problem) if one is invalid. */
function readSettings() {
  const form = $('settings');
  if (!form.checkValidity()) {
    form.reportValidity();
    return null;
  }
  const settings = {
    prompt: $('prompt').value.trim(),
    seed: Number($('seed').value),
    steps: Number($('steps').value),
    cfg: Number($('cfg').value),
    scheduler: $('scheduler').value,
  };
  const negative = $('negative-prompt').value.trim();
  if (negative) settings.negative_prompt = negative;
  return settings;
}

/** This page's address with the settings in its query: opening it reproduces the run. */
function settingsUrl(settings, hash = location.hash) {
  const query = new URLSearchParams();
  for (const name of URL_SETTINGS) {
    if (settings[name] !== undefined) query.set(name, String(settings[name]));
  }
  return `${location.pathname}?${query}${hash}`;
}

/** A shared link's settings go into the form (the sampler waits for the server's list). */
function fillFormFromUrl() {
  const query = new URLSearchParams(location.search);
  for (const [name, id] of Object.entries(SETTING_FIELDS)) {
    if (query.has(name)) $(id).value = query.get(name);
  }
}

/** Without a link's settings, start from what the model draws best. */
function applyDefaults(model) {
  const query = new URLSearchParams(location.search);
  // A link's prompt is kept even when empty (an unconditional picture).
  if (!query.has('prompt')) $('prompt').value = model.examplePrompt;
  if (!query.has('cfg')) $('cfg').value = String(model.suggestedCfg);
  $('cfg-b').value = String(model.suggestedCfg);
  fillSwapWords();
  showCompareBase();
}

function fillSchedulers(names) {
  const select = $('scheduler');
  const wanted = select.value || new URLSearchParams(location.search).get('scheduler') || 'pndm';
  select.replaceChildren(...names.map((name) => new Option(name, name)));
  select.value = names.includes(wanted) ? wanted : (names.includes('pndm') ? 'pndm' : names[0]);
}

async function copyLink() {
  const settings = readSettings();
  if (!settings) return;
  const link = new URL(settingsUrl(settings), location.href).href;
  $('copy-result').textContent = (await copyText(link)) ? 'Link copied.' : `Copy this link: ${link}`;
}

/**
 * Copies text to the clipboard. The Clipboard API needs a secure page (https or localhost); on a
 * classroom network address (http://192.168…) the older copy command still works.
 */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const field = document.createElement('textarea');
    field.value = text;
    field.style.position = 'fixed';
    field.style.opacity = '0';
    document.body.append(field);
    field.select();
    const copied = document.execCommand('copy');
    field.remove();
    return copied;
  }
}

/** The run's words as chips (null: the run has not started yet). */
function showWordChips(words) {
  selectedWord = null;
  const container = $('words');
  if (!words || words.length === 0) {
    const note = document.createElement('p');
    note.className = 'quiet';
    note.textContent = words ? 'The model reads none of this prompt\'s words.' : 'The prompt\'s words appear here when the run starts.';
    container.replaceChildren(note);
    return;
  }
  container.replaceChildren(...words.map((word, index) => wordChip(word.word, index)));
}

function wordChip(text, index) {
  const chip = document.createElement('button');
  chip.type = 'button';
  chip.className = 'chip';
  chip.setAttribute('aria-pressed', 'false');
  const word = document.createElement('span');
  word.textContent = text;
  const share = document.createElement('span');
  share.className = 'share';
  share.textContent = '–';
  chip.append(word, share);
  chip.addEventListener('click', () => {
    selectedWord = selectedWord === index ? null : index;
    mainPlayer.render();
  });
  return chip;
}

/** After each render of the main view: the chips' shares at this step, and the chosen word's map. */
function showWordsAt(frame) {
  $('words').querySelectorAll('.chip').forEach((chip, index) => {
    chip.setAttribute('aria-pressed', String(index === selectedWord));
    chip.querySelector('.share').textContent = frame ? formatShare(frame.shares[index]) : '–';
  });
  const overlay = $('attention-overlay');
  const map = frame && selectedWord !== null ? frame.attention[selectedWord] : null;
  overlay.hidden = !map;
  if (map) drawAttention(overlay, map, mainView.run.mapWidth, mainView.run.mapHeight);
}

// ───────────────────────── 6. The Compare panel ─────────────────────────

let comparePlayer;
const compareSides = [];

function setUpComparePanel() {
  for (const id of ['compare-a', 'compare-b']) compareSides.push(buildSide($(id)));
  comparePlayer = new Player({
    slider: $('compare-slider'), button: $('compare-play'), counter: $('compare-count'),
    views: compareSides.map((side) => side.view),
    describeCount: () => `${compareSides.map((side) => side.view.frameCount).join(' + ')} steps`,
  });
  $('compare-form').addEventListener('submit', (event) => {
    event.preventDefault();
    startCompare();
  });
  for (const radio of document.querySelectorAll('input[name="compare-mode"]')) {
    radio.addEventListener('change', showCompareMode);
  }
}

/** One side of the comparison, built from the page's template. */
function buildSide(article) {
  article.append($('side-template').content.cloneNode(true));
  const find = (selector) => article.querySelector(selector);
  const side = {
    title: find('.side-title'),
    status: find('.side-status'),
    notice: find('.side-notice'),
    view: new StepView({
      noisy: find('[data-picture="noisy"]'), noise: find('[data-picture="noise"]'),
      clean: find('[data-picture="clean"]'), stats: find('.stats'),
    }),
    result: { img: find('[data-picture="final"]'), png: find('.save-png'), gif: find('.save-gif') },
  };
  side.presenter = {
    started: (run) => showMessage(side.notice, run.notice),
    update: (run) => {
      if (side.view.run !== run) return;
      side.status.textContent = describeRun(run);
      showResult(side.result, run);
      comparePlayer.update();
    },
  };
  return side;
}

const compareMode = () => document.querySelector('input[name="compare-mode"]:checked').value;

/** Shows the inputs of the chosen mode; the hidden group is disabled so the form skips its checks. */
function showCompareMode() {
  const byWord = compareMode() === 'word';
  for (const [id, shown] of [['compare-cfg', !byWord], ['compare-word', byWord]]) {
    $(id).hidden = !shown;
    $(id).disabled = !shown;
  }
  showCompareBase();
}

/** The shared settings both runs take from the Generate panel. */
function showCompareBase() {
  const parts = [`“${$('prompt').value.trim()}”`, `seed ${$('seed').value}`, plural(Number($('steps').value), 'step'), $('scheduler').value];
  if (compareMode() === 'word') parts.push(`guidance ${$('cfg').value}`);
  $('compare-base').textContent = parts.filter(Boolean).join(', ');
}

/** The prompt's words with their places, so that one can be replaced without touching the rest. */
function promptWords(prompt) {
  return [...prompt.matchAll(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu)]
    .map((match) => ({ text: match[0], start: match.index, end: match.index + match[0].length }));
}

/** Lists the prompt's words to swap, keeping the chosen one when the prompt changes around it. */
function fillSwapWords() {
  const select = $('swap-word');
  const chosen = select.selectedOptions[0]?.textContent;
  const words = promptWords($('prompt').value);
  select.replaceChildren(...words.map((word, index) => new Option(word.text, String(index))));
  const again = words.findIndex((word) => word.text === chosen);
  if (again >= 0) select.value = String(again);
}

function startCompare() {
  const error = $('compare-error');
  if (!$('settings').checkValidity()) {
    showMessage(error, 'First give a prompt and valid settings in “Generate, live”.');
    return;
  }
  const form = $('compare-form');
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  showMessage(error, null);
  const pair = compareVariants(readSettings()).map((variant, index) => {
    const side = compareSides[index];
    side.title.replaceChildren(...variant.title);
    showMessage(side.notice, null);
    side.view.run = newRun(index === 0 ? 'compare-a' : 'compare-b', variant.settings, side.presenter);
    return side.view.run;
  });
  comparePlayer.restart();
  startActivity(pair);
  pair.forEach((run) => run.presenter.update(run));
}

/** The two runs' settings and titles: the same seed, one thing changed. */
function compareVariants(base) {
  if (compareMode() === 'cfg') {
    return ['cfg-a', 'cfg-b'].map((id) => {
      const cfg = Number($(id).value);
      return { settings: { ...base, cfg }, title: [`guidance ${cfg}`] };
    });
  }
  const word = promptWords(base.prompt)[Number($('swap-word').value)];
  const replacement = $('swap-with').value.trim();
  const swapped = base.prompt.slice(0, word.start) + replacement + base.prompt.slice(word.end);
  return [
    { settings: base, title: highlighted(base.prompt, word.start, word.end) },
    { settings: { ...base, prompt: swapped }, title: highlighted(swapped, word.start, word.start + replacement.length) },
  ];
}

/** A prompt in quotes with its characters start…end marked. */
function highlighted(text, start, end) {
  const mark = document.createElement('mark');
  mark.textContent = text.slice(start, end);
  return [`“${text.slice(0, start)}`, mark, `${text.slice(end)}”`];
}

// ───────────────────────── 7. The Forward noising panel ─────────────────────────

/*
 * Training noises a picture x₀ straight to any timestep t:
 *   x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε,   ε ~ N(0, I)
 * The server does it in pixel space; the page asks for one t at a time. While one request is
 * out, only the newest wish is remembered, so dragging the slider never piles up requests.
 */
const noising = { wanted: '', asked: '', busy: false };

function setUpNoisingPanel() {
  $('noise-t').addEventListener('input', requestNoise);
  $('noise-picture').addEventListener('change', requestNoise);
  $('noise-seed').addEventListener('input', requestNoise);
  $('noise-upload').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) uploadPicture(file);
  });
}

/** The built-in pictures the server offers; uploads are added after them. */
function fillPictures(names) {
  $('noise-picture').replaceChildren(...names.map((name) => new Option(name, name)));
  requestNoise();
}

function requestNoise() {
  const t = $('noise-t').value;
  $('noise-t-value').textContent = t;
  const picture = $('noise-picture').value;
  if (!picture) return;
  noising.wanted = new URLSearchParams({ picture, t, seed: $('noise-seed').value || '0' }).toString();
  fetchNoise();
}

async function fetchNoise() {
  if (noising.busy || noising.wanted === noising.asked) return;
  const query = noising.wanted;
  noising.busy = true;
  noising.asked = query;
  try {
    showNoised(await fetchJson(`/api/noise?${query}`));
    showMessage($('noise-error'), null);
  } catch (error) {
    showMessage($('noise-error'), `Could not noise the picture: ${error.message}`);
  } finally {
    noising.busy = false;
    fetchNoise();
  }
}

function showNoised({ alphaBar, snr, image }) {
  setPicture($('noise-image'), image);
  $('noise-alpha').textContent = formatNumber(alphaBar);
  // SNR = ᾱ_t / (1−ᾱ_t): the signal's power over the noise's. It falls from ~10³ to ~10⁻³,
  // so its logarithm shows the fall more evenly.
  $('noise-snr').textContent = formatNumber(snr);
  $('noise-log-snr').textContent = formatNumber(Math.log10(snr));
  // The two weights of the mix; their squares add up to 1, so x_t keeps unit variance.
  showWeight('signal', Math.sqrt(alphaBar));
  showWeight('noise', Math.sqrt(1 - alphaBar));
}

function showWeight(name, weight) {
  $(`bar-${name}`).style.width = `${(weight * 100).toFixed(1)}%`;
  $(`noise-${name}`).textContent = weight.toFixed(2);
}

/** Sends a PNG or JPEG to the server (checked here first: type and 4 MB) and noises it. */
async function uploadPicture(file) {
  const error = $('noise-error');
  const extension = file.name.split('.').pop().toLowerCase();
  const type = file.type || UPLOAD_TYPES[extension];
  if (!Object.values(UPLOAD_TYPES).includes(type)) {
    showMessage(error, `“${file.name}” is not a PNG or JPEG picture.`);
    return;
  }
  if (file.size > UPLOAD_BYTES) {
    showMessage(error, `“${file.name}” is ${formatNumber(file.size / 2 ** 20)} MB; the most is 4 MB.`);
    return;
  }
  const input = $('noise-upload');
  input.disabled = true;
  showMessage(error, null);
  try {
    const { picture } = await fetchJson('/api/pictures', { method: 'POST', headers: { 'Content-Type': type }, body: file });
    $('noise-picture').append(new Option(`your picture: ${file.name}`, picture));
    $('noise-picture').value = picture;
    requestNoise();
  } catch (problem) {
    showMessage(error, `Upload failed: ${problem.message}`);
  } finally {
    input.disabled = false;
    input.value = '';
  }
}

// ───────────────────────── 8. The class's gallery ─────────────────────────

/**
 * Every page hears what the whole class is doing: how many pages are open, the prompt being
 * drawn, the queue, and the newest pictures made on any page (so the teacher's projector shows
 * what the students make on their own devices).
 */
function onClass({ pages, waiting, drawing, gallery }) {
  const parts = [plural(pages, 'page') + ' open'];
  if (drawing !== null && drawing !== undefined) parts.push(`drawing “${drawing}”`);
  if (waiting > 0) parts.push(`${plural(waiting, 'run')} waiting`);
  $('class-line').textContent = `The class: ${parts.join(' · ')}`;
  showGallery(gallery);
}

function showGallery(entries) {
  $('gallery-empty').hidden = entries.length > 0;
  $('gallery').replaceChildren(...entries.map(galleryItem));
}

/** One picture: its thumbnail (a link to the full PNG), its prompt, and a link that makes it again. */
function galleryItem({ thumbnail, png, settings }) {
  const item = document.createElement('li');
  const picture = document.createElement('a');
  picture.href = png;
  picture.target = '_blank';
  const img = document.createElement('img');
  img.src = thumbnail;
  img.alt = settings.prompt || 'an unconditional picture';
  picture.append(img);
  const prompt = document.createElement('span');
  prompt.className = 'prompt';
  prompt.textContent = settings.prompt || '(empty prompt)';
  const details = document.createElement('span');
  details.className = 'run-settings';
  details.textContent = `seed ${settings.seed} · ${settings.steps} steps · cfg ${formatNumber(settings.cfg)} · ${settings.scheduler}`;
  const again = document.createElement('a');
  again.href = settingsUrl(settings, '');   // opens on the Generate tab and runs it
  again.textContent = 'Make it again';
  item.append(picture, prompt, details, again);
  return item;
}

// ───────────────────────── 9. Tabs and start-up ─────────────────────────

function selectTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', String(selected));
    $(tab.getAttribute('aria-controls')).hidden = !selected;
  }
  if (name === 'compare') {
    fillSwapWords();
    showCompareBase();
  }
}

function setUpTabs() {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener('click', () => {
      selectTab(tab.dataset.tab);
      history.replaceState(null, '', `#${tab.dataset.tab}`);   // a link can open a tab
    });
  }
  const linked = location.hash.slice(1);
  if (document.querySelector(`[role="tab"][data-tab="${CSS.escape(linked)}"]`)) selectTab(linked);
}

function start() {
  fillFormFromUrl();
  setUpGeneratePanel();
  setUpComparePanel();
  setUpNoisingPanel();
  setUpTabs();
  $('reconnect').addEventListener('click', connect);
  connect();
}

// The script is loaded with `defer`: the page's elements exist by now.
start();
