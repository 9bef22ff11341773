/*
 * The pluggedin-mcp-proxy console: a single page over the proxy's JSON API (/api/v1/...).
 * Each page is a hash route (#/servers, #/tools, ...) showing the live proxy and acting on it.
 * Everything the API returns is untrusted: the DOM is built with createElement and textContent
 * only, links are limited to http(s) and in-console routes, media to base64 data: URLs.
 * No libraries and no build step; charts are hand-drawn SVG.
 */
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
/** Files up to this size are sent in one request; larger ones in chunks. */
const SMALL_UPLOAD_BYTES = 1024 * 1024;
/** How deep a generated form nests objects and arrays before it asks for raw JSON. */
const MAX_FORM_DEPTH = 8;
const PAGE_TITLES = {
  servers: "Servers", playground: "Playground", tools: "Tools", prompts: "Prompts",
  resources: "Resources", documents: "Documents", notifications: "Notifications",
  activity: "Activity", workspaces: "Workspaces", settings: "Settings",
};

/* ------------------------------------------------------------------------------------------ */
/* DOM helpers                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/**
 * Creates an element. `props`: `class`, `text` (textContent), `on<event>` listeners, known
 * properties (value, type, disabled, ...) and any other attribute (data-*, aria-*, for, ...).
 */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "for") node.htmlFor = value;
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (!key.includes("-") && key in node) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return append(node, children);
}

/** Creates an SVG element with the given attributes. */
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  return append(node, children);
}

/** Appends children (nodes, strings as text, nested arrays; null and false are skipped). */
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replaces a node's children (null and false are skipped, as in `append`). */
function setChildren(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A page's title bar: heading, a line of explanation and its actions. */
function pageHeader(title, subtitle, ...actions) {
  return el("header", { class: "page-header" },
    el("div", {}, el("h1", { text: title }), subtitle ? el("p", { class: "subtitle" },
      subtitle) : null),
    el("div", { class: "page-actions" }, actions));
}

/** A card with an optional title. */
function card(title, ...children) {
  return el("section", { class: "card" }, title ? el("h2", { class: "card-title", text: title })
    : null, children);
}

function badge(text, kind) {
  return el("span", { class: "badge" + (kind ? " badge-" + kind : ""), text });
}

function button(text, props) {
  return el("button", Object.assign({ type: "button", class: "btn" }, props || {}), text);
}

/** A table: `headers` as strings, `rows` as <tr> elements. */
function table(headers, rows, props) {
  return el("table", Object.assign({ class: "table" }, props || {}),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows));
}

function emptyRow(columns, text) {
  return el("tr", { class: "empty" }, el("td", { colSpan: columns, text }));
}

function muted(text) {
  return el("p", { class: "muted", text });
}

/** Calls `fn` once input has paused for `ms`. */
function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** An href that is safe to follow: http(s) only, else null. */
function safeHref(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (error) {
    return null;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Formatting                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/** A Date from epoch milliseconds, an ISO string or a numeric string; null when none. */
function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const input = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  const date = new Date(input);
  return Number.isNaN(date.getTime()) ? null : date;
}

function pad(number) {
  return String(number).padStart(2, "0");
}

function formatTime(value) {
  const date = toDate(value);
  if (!date) return "—";
  return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
    " " + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
}

function formatAgo(value) {
  const date = toDate(value);
  if (!date) return "—";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 0) return formatTime(value);
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
  return Math.floor(seconds / 86400) + " d ago";
}

/** A <time> showing "5 min ago", with the full date as its tooltip. */
function timeAgo(value) {
  const date = toDate(value);
  return el("time", { dateTime: date ? date.toISOString() : "", title: formatTime(value),
    text: formatAgo(value) });
}

function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes)) return "—";
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

function formatMs(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function formatPercent(part, whole) {
  if (!whole) return "—";
  const rate = (100 * part) / whole;
  return (rate < 10 && rate > 0 ? rate.toFixed(1) : Math.round(rate)) + "%";
}

function pretty(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch (error) {
    return String(value);
  }
}

/** Text as it should be shown: JSON pretty-printed when it parses as an object or array. */
function prettyText(text) {
  const trimmed = typeof text === "string" ? text.trim() : "";
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.stringify(JSON.parse(trimmed), null, 2);
    } catch (error) {
      return text;
    }
  }
  return typeof text === "string" ? text : pretty(text);
}

/** A model or author as text: "name (provider)" for objects, the string itself otherwise. */
function formatAuthor(value) {
  if (!value) return "—";
  if (typeof value === "string") return value;
  if (typeof value === "object") {
    const name = value.name || value.id || "";
    const provider = value.provider ? " (" + value.provider + ")" : "";
    const version = value.version ? " " + value.version : "";
    return (name + version + provider).trim() || pretty(value);
  }
  return String(value);
}

/* ------------------------------------------------------------------------------------------ */
/* Banner                                                                                       */
/* ------------------------------------------------------------------------------------------ */

let bannerTimer = 0;

/** Shows the last error or notice in #banner; notices fade after a few seconds. */
function setBanner(message, kind) {
  const text = document.getElementById("banner");
  const bar = text.parentElement;
  text.textContent = message;
  bar.className = "banner-bar " + kind;
  bar.hidden = !message;
  clearTimeout(bannerTimer);
  if (kind === "notice") {
    bannerTimer = setTimeout(() => {
      if (text.textContent === message) bar.hidden = true;
    }, 8000);
  }
}

function notify(message) {
  setBanner(message, "notice");
}

function showError(message) {
  setBanner(message, "error");
}

function dismissBanner() {
  document.querySelector(".banner-bar").hidden = true;
}

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                          */
/* ------------------------------------------------------------------------------------------ */

/**
 * A failed API call: its HTTP status (0 when the proxy did not answer), message and the error
 * answer's body (null when there was none).
 */
class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.data = data === undefined ? null : data;
  }
}

/**
 * How the console proves who it is. Normally the session cookie (HttpOnly, set by the proxy);
 * a proxy without the session endpoint gets the token as a bearer header, kept in memory only.
 */
const auth = { bearer: null, signedIn: false, asking: false };

function apiHeaders(hasBody, accept) {
  const headers = { Accept: accept || "application/json" };
  if (hasBody) headers["Content-Type"] = "application/json";
  if (auth.bearer) headers.Authorization = "Bearer " + auth.bearer;
  return headers;
}

/** A response's body: JSON when it parses, else its text, null when empty. */
async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    return text;
  }
}

/** The message of an error answer: `{"error": "..."}`, `{"error": {"message"}}` or text. */
function errorMessage(status, data) {
  let message = "";
  const error = data && typeof data === "object" ? data.error : data;
  if (typeof error === "string") message = error;
  else if (error && typeof error.message === "string") message = error.message;
  return (status ? status + ": " : "") + (message || "the request failed");
}

/** Calls the API; resolves with the JSON answer or rejects with an ApiError. */
async function api(path, options) {
  const opts = options || {};
  const method = opts.method || "GET";
  let body = opts.body;
  // The API takes a POST only with a JSON body.
  if (body === undefined && method === "POST") body = {};
  const init = { method, headers: apiHeaders(body !== undefined), signal: opts.signal,
    credentials: "same-origin" };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The proxy did not answer (" + error.message + ").");
  }
  const data = await readBody(response);
  if (!response.ok) {
    throw new ApiError(response.status, errorMessage(response.status, data), data);
  }
  return data;
}

/** Shows a failure where it belongs: sign-in for 401, the banner for everything else. */
function report(error) {
  if (!error || error.name === "AbortError") return;
  if (error.status === 401) {
    showSignIn();
    showError(error.message);
    return;
  }
  showError(error.message || String(error));
  if (error.status === 403) {
    document.querySelector(".banner-bar").classList.add("fatal");
  }
}

function encodeSegment(value) {
  return encodeURIComponent(String(value));
}

/* ------------------------------------------------------------------------------------------ */
/* Routing                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** The page on screen: its timers and requests end when another page replaces it. */
let currentPage = null;
/** Object URLs made for downloads on the current page, released when it goes. */
let objectUrls = [];

function pageContext(name) {
  const ctx = {
    name,
    alive: true,
    timers: [],
    controller: new AbortController(),
    /** Runs `fn` every `ms` while the page is shown and the browser tab is visible. */
    every(ms, fn) {
      const timer = setInterval(() => {
        if (ctx.alive && !document.hidden) fn();
      }, ms);
      ctx.timers.push(timer);
    },
    /** API call tied to this page: aborted when the page goes. */
    api(path, options) {
      return api(path, Object.assign({ signal: ctx.controller.signal }, options || {}));
    },
  };
  return ctx;
}

function leavePage() {
  if (!currentPage) return;
  currentPage.alive = false;
  currentPage.timers.forEach(clearInterval);
  currentPage.controller.abort();
  currentPage = null;
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
}

function highlightNav(page) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = link.dataset.nav === page;
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** The route in the hash: page name and the rest (an item to open), decoded. */
function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = parts.shift();
  let rest = parts.join("/");
  try {
    rest = decodeURIComponent(rest);
  } catch (error) {
    rest = "";
  }
  return { name, rest };
}

/** Records the item open on the current page in the hash, without reloading the page. */
function setSubroute(page, item) {
  const hash = "#/" + page + (item ? "/" + encodeURIComponent(item) : "");
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function route() {
  const { name, rest } = parseHash();
  const page = Object.prototype.hasOwnProperty.call(PAGES, name) ? name : "servers";
  leavePage();
  const ctx = pageContext(page);
  currentPage = ctx;
  highlightNav(page);
  document.title = PAGE_TITLES[page] + " · pluggedin-mcp-proxy";
  const section = el("section", { class: "page", "data-page": page });
  setChildren(document.getElementById("main"), section);
  Promise.resolve()
    .then(() => PAGES[page](section, ctx, rest))
    .catch(report);
}

/* ------------------------------------------------------------------------------------------ */
/* Sign-in                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Replaces the page with the sign-in form (the API answered 401). */
function showSignIn() {
  auth.asking = true;
  if (document.getElementById("signin")) return;
  leavePage();
  highlightNav(null);
  const input = el("input", { type: "password", name: "token", id: "signin-token",
    autocomplete: "current-password", required: true, "aria-required": "true" });
  // Password managers pair a token with an account name; this one names the console.
  const account = el("input", { type: "text", name: "username", autocomplete: "username",
    value: "pluggedin-console", hidden: true, tabIndex: -1 });
  const form = el("form", { id: "signin", class: "card signin", novalidate: true },
    account, el("h1", { text: "Sign in" }),
    el("p", { class: "muted", text: "This proxy asks for a token before it shows its API. " +
      "Use one of its auth tokens (--auth-token, the config's authTokens, or the API key)." }),
    el("div", { class: "field" }, el("label", { for: "signin-token", class: "field-label",
      text: "Token" }), input),
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "btn primary",
      text: "Sign in" })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(form, input);
  });
  const section = el("section", { class: "page", "data-page": "signin" }, form);
  setChildren(document.getElementById("main"), section);
  input.focus();
}

async function signIn(form, input) {
  const token = input.value.trim();
  clearFieldErrors(form);
  if (!token) {
    showFieldErrors(form, [{ wrap: input.parentElement, control: input,
      message: "Enter a token." }]);
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    await openSession(token);
    await api("/api/v1/servers");
  } catch (error) {
    auth.bearer = null;
    submit.disabled = false;
    const message = error.status === 401 ? "The proxy refused this token." : error.message;
    showFieldErrors(form, [{ wrap: input.parentElement, control: input, message }]);
    showError(message);
    return;
  }
  auth.signedIn = true;
  auth.asking = false;
  document.getElementById("signout").hidden = false;
  notify("Signed in.");
  route();
}

/** Asks the proxy for a session cookie; a proxy without sessions takes a bearer header. */
async function openSession(token) {
  try {
    await api("/api/v1/session", { method: "POST", body: { token } });
    auth.bearer = null;
  } catch (error) {
    if (error.status !== 404 && error.status !== 405) throw error;
    auth.bearer = token;
  }
}

async function signOut() {
  try {
    if (!auth.bearer) await api("/api/v1/session", { method: "DELETE" });
  } catch (error) {
    if (error.status !== 404 && error.status !== 401) report(error);
  }
  auth.bearer = null;
  auth.signedIn = false;
  document.getElementById("signout").hidden = true;
  notify("Signed out.");
  showSignIn();
}

/* ------------------------------------------------------------------------------------------ */
/* Forms generated from JSON Schema                                                             */
/* ------------------------------------------------------------------------------------------ */
/*
 * A field is {element, collect(), raw()}. collect() returns {value, explicit, errors}:
 * `value` undefined means "leave it out"; `explicit` says the user gave something (not just a
 * prefilled default), which decides whether an optional object is sent at all; `errors` are
 * {wrap, control, message} for inline messages. raw() is the value as typed, used to rebuild
 * an array's items after one is removed (their names follow their index).
 */

let fieldSerial = 0;

function nextFieldId() {
  fieldSerial += 1;
  return "field-" + fieldSerial;
}

function joinPath(path, key) {
  return path === "" ? String(key) : path + "." + key;
}

function lastSegment(path) {
  const parts = path.split(".");
  return parts[parts.length - 1];
}

function firstDefined(...values) {
  return values.find((value) => value !== undefined);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The node a local reference points to: "#", "#/$defs/x", "#/definitions/x" or "#anchor". */
function lookupRef(ref, root) {
  if (ref === "#") return root;
  if (ref.startsWith("#/")) {
    let node = root;
    for (const raw of ref.slice(2).split("/")) {
      let key;
      try {
        key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      } catch (error) {
        return null;
      }
      if (!node || typeof node !== "object" || !Object.prototype.hasOwnProperty.call(node, key)) {
        return null;
      }
      node = node[key];
    }
    return node;
  }
  if (ref.startsWith("#")) return findAnchor(root, ref.slice(1), 0);
  return null;
}

function findAnchor(node, anchor, depth) {
  if (!node || typeof node !== "object" || depth > 12) return null;
  if (node.$anchor === anchor) return node;
  for (const value of Object.values(node)) {
    const found = findAnchor(value, anchor, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * A schema with its local $ref followed (sibling keywords win), allOf's properties merged and
 * "T or null" unwrapped to T.
 */
function resolveSchema(schema, root, depth) {
  const level = depth || 0;
  let current = schema === true || !isObject(schema) ? {} : schema;
  for (let hops = 0; typeof current.$ref === "string" && hops < 32; hops += 1) {
    const target = lookupRef(current.$ref, root);
    const rest = Object.assign({}, current);
    delete rest.$ref;
    if (!isObject(target)) return rest;
    current = Object.assign({}, target, rest);
  }
  if (level > MAX_FORM_DEPTH) return current;
  return unwrapNullable(mergeAllOf(current, root, level), root, level);
}

const MERGED_KEYWORDS = ["type", "title", "description", "default", "enum", "const", "items",
  "format", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems"];

function mergeAllOf(schema, root, depth) {
  if (!Array.isArray(schema.allOf)) return schema;
  const merged = Object.assign({}, schema);
  delete merged.allOf;
  for (const part of schema.allOf) {
    const resolved = resolveSchema(part, root, depth + 1);
    if (isObject(resolved.properties)) {
      merged.properties = Object.assign({}, resolved.properties, merged.properties || {});
    }
    if (Array.isArray(resolved.required)) {
      const required = (merged.required || []).concat(resolved.required);
      merged.required = required.filter((key, index) => required.indexOf(key) === index);
    }
    for (const key of MERGED_KEYWORDS) {
      if (merged[key] === undefined && resolved[key] !== undefined) merged[key] = resolved[key];
    }
  }
  return merged;
}

function unwrapNullable(schema, root, depth) {
  if (schema.type || schema.properties) return schema;
  for (const key of ["anyOf", "oneOf"]) {
    const options = schema[key];
    if (!Array.isArray(options)) continue;
    const real = options.filter((option) => !(isObject(option) && option.type === "null"));
    if (real.length === 1 && real.length < options.length) {
      const rest = Object.assign({}, schema);
      delete rest[key];
      return Object.assign({}, resolveSchema(real[0], root, depth + 1), rest);
    }
  }
  return schema;
}

function choiceLabel(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The fixed choices of a schema (enum, enumNames, oneOf/anyOf of consts), else null. */
function choicesOf(schema) {
  if (Array.isArray(schema.enum)) {
    const names = Array.isArray(schema.enumNames) ? schema.enumNames : [];
    return schema.enum.map((value, index) => ({ value,
      label: names[index] !== undefined ? String(names[index]) : choiceLabel(value) }));
  }
  const options = schema.oneOf || schema.anyOf;
  if (Array.isArray(options) && options.length &&
      options.every((option) => isObject(option) && "const" in option)) {
    return options.map((option) => ({ value: option.const,
      label: option.title !== undefined ? String(option.title) : choiceLabel(option.const) }));
  }
  return null;
}

/** The kind of input a (resolved) schema gets. */
function kindOf(schema) {
  if (choicesOf(schema)) return "enum";
  if ("const" in schema) return "const";
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== "null");
  if (!type && isObject(schema.properties)) type = "object";
  if (!type && schema.items) type = "array";
  if (type === "object" && !isObject(schema.properties)) return "json";
  if (["string", "number", "integer", "boolean", "object", "array"].includes(type)) return type;
  return "json";
}

/**
 * The field for one schema at `path`; options: root, required, initial, label, depth, and refs
 * (the references being expanded above it: one met again is a recursive schema, asked as JSON).
 */
function schemaField(rawSchema, path, givenOptions) {
  const ref = isObject(rawSchema) && typeof rawSchema.$ref === "string" ? rawSchema.$ref : null;
  const refs = givenOptions.refs || [];
  const options = Object.assign({}, givenOptions, { refs: ref ? refs.concat(ref) : refs });
  const schema = resolveSchema(rawSchema, options.root, 0);
  const depth = options.depth || 0;
  let kind = kindOf(schema);
  if (ref && refs.includes(ref)) kind = "json";
  if (path === "" && kind === "json") kind = "object";
  if (depth > MAX_FORM_DEPTH && (kind === "object" || kind === "array")) kind = "json";
  switch (kind) {
    case "object": return objectField(schema, path, options);
    case "array": return arrayField(schema, path, options);
    case "enum": return enumField(schema, path, options);
    case "boolean": return booleanField(schema, path, options);
    case "number":
    case "integer": return numberField(schema, path, options, kind === "integer");
    case "string": return stringField(schema, path, options);
    case "const": return constField(schema, path, options);
    default: return jsonField(schema, path, options);
  }
}

function fieldLabel(schema, path, options) {
  return options.label || schema.title || lastSegment(path) || "value";
}

function requiredMark(required) {
  return required ? el("span", { class: "required", title: "required", text: "*" }) : null;
}

/** The wrapper of one input: label (with the required mark), control, description. */
function fieldShell(schema, path, options, control) {
  if (!control.id) control.id = nextFieldId();
  if (options.required) control.setAttribute("aria-required", "true");
  const label = el("label", { for: control.id, class: "field-label" },
    fieldLabel(schema, path, options), requiredMark(options.required));
  const hint = schema.description ? el("p", { class: "hint", text: schema.description }) : null;
  return el("div", { class: "field", "data-field": path }, label, control, hint);
}

function absent() {
  return { value: undefined, explicit: false, errors: [] };
}

function missing(wrap, control) {
  return { value: undefined, explicit: false,
    errors: [{ wrap, control, message: "This field is required." }] };
}

function invalid(wrap, control, message) {
  return { value: undefined, explicit: true, errors: [{ wrap, control, message }] };
}

const FORMAT_HINTS = {
  "date-time": "2025-01-31T12:00:00Z", date: "2025-01-31", time: "12:00:00",
  email: "name@example.com", uri: "https://…", url: "https://…", uuid: "xxxxxxxx-xxxx-…",
};

function inputTypeFor(schema) {
  if (schema.format === "date") return "date";
  if (schema.format === "email") return "email";
  if (schema.format === "uri" || schema.format === "url") return "url";
  if (schema.format === "password" || schema.writeOnly === true) return "password";
  return "text";
}

function wantsTextarea(schema, path) {
  if (schema.format || schema.enum) return false;
  if (typeof schema.maxLength === "number" && schema.maxLength <= 200) return false;
  if (schema.contentMediaType) return true;
  return /^(content|body|text|prompt|code|markdown|html|script|query|sql|template)$/i
    .test(lastSegment(path));
}

/** What is wrong with a string for its schema, or "". */
function stringProblem(schema, text) {
  const length = Array.from(text).length;
  if (typeof schema.minLength === "number" && length < schema.minLength) {
    return "At least " + schema.minLength + " characters.";
  }
  if (typeof schema.maxLength === "number" && length > schema.maxLength) {
    return "At most " + schema.maxLength + " characters.";
  }
  if (typeof schema.pattern === "string") {
    try {
      if (!new RegExp(schema.pattern, "u").test(text)) {
        return "Does not match the pattern " + schema.pattern + ".";
      }
    } catch (error) {
      // A pattern this browser cannot compile is left to the server.
    }
  }
  if (schema.format === "email" && !/^[^@\s]+@[^@\s]+$/.test(text)) return "Not an e-mail address.";
  if ((schema.format === "uri" || schema.format === "url") && !/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    return "Not a URI.";
  }
  if (schema.format === "date-time" && Number.isNaN(Date.parse(text))) return "Not a date-time.";
  return "";
}

function stringField(schema, path, options) {
  const control = wantsTextarea(schema, path)
    ? el("textarea", { name: path, rows: 4 })
    : el("input", { type: inputTypeFor(schema), name: path, autocomplete: "off" });
  const initial = firstDefined(options.initial, schema.default);
  if (initial !== undefined && initial !== null) {
    control.value = typeof initial === "string" ? initial : JSON.stringify(initial);
  }
  const example = Array.isArray(schema.examples) ? schema.examples[0] : undefined;
  if (typeof example === "string") control.placeholder = example;
  else if (FORMAT_HINTS[schema.format]) control.placeholder = FORMAT_HINTS[schema.format];
  const wrap = fieldShell(schema, path, options, control);
  return {
    element: wrap,
    raw: () => control.value,
    collect() {
      const text = control.value;
      if (text === "") return options.required ? missing(wrap, control) : absent();
      const problem = stringProblem(schema, text);
      if (problem) return invalid(wrap, control, problem);
      return { value: text, explicit: text !== schema.default, errors: [] };
    },
  };
}

const NUMBER_PATTERN = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** What is wrong with a number for its schema, or "". */
function numberProblem(schema, number, integer) {
  if (integer && !Number.isInteger(number)) return "Must be a whole number.";
  if (typeof schema.minimum === "number") {
    if (schema.exclusiveMinimum === true ? number <= schema.minimum : number < schema.minimum) {
      return "Must be at least " + schema.minimum + ".";
    }
  }
  if (typeof schema.maximum === "number") {
    if (schema.exclusiveMaximum === true ? number >= schema.maximum : number > schema.maximum) {
      return "Must be at most " + schema.maximum + ".";
    }
  }
  if (typeof schema.exclusiveMinimum === "number" && number <= schema.exclusiveMinimum) {
    return "Must be more than " + schema.exclusiveMinimum + ".";
  }
  if (typeof schema.exclusiveMaximum === "number" && number >= schema.exclusiveMaximum) {
    return "Must be less than " + schema.exclusiveMaximum + ".";
  }
  return "";
}

/** A number typed as text (so anything typed can be checked and explained), sent as a number. */
function numberField(schema, path, options, integer) {
  const control = el("input", { type: "text", name: path, autocomplete: "off",
    inputMode: integer ? "numeric" : "decimal", class: "number" });
  const initial = firstDefined(options.initial, schema.default);
  if (initial !== undefined && initial !== null) control.value = String(initial);
  const wrap = fieldShell(schema, path, options, control);
  return {
    element: wrap,
    raw: () => control.value,
    collect() {
      const text = control.value.trim();
      if (text === "") return options.required ? missing(wrap, control) : absent();
      if (!NUMBER_PATTERN.test(text)) return invalid(wrap, control, "Not a number.");
      const number = Number(text);
      const problem = numberProblem(schema, number, integer);
      if (problem) return invalid(wrap, control, problem);
      return { value: number, explicit: number !== schema.default, errors: [] };
    },
  };
}

/** A checkbox; an optional one without a default is sent only once the user changed it. */
function booleanField(schema, path, options) {
  const control = el("input", { type: "checkbox", name: path });
  const initial = firstDefined(options.initial, schema.default);
  control.checked = initial === true;
  let touched = options.initial !== undefined;
  control.addEventListener("change", () => {
    touched = true;
  });
  if (!control.id) control.id = nextFieldId();
  const label = el("label", { for: control.id, class: "check-label" }, control,
    el("span", {}, fieldLabel(schema, path, options)), requiredMark(options.required));
  const hint = schema.description ? el("p", { class: "hint", text: schema.description }) : null;
  const wrap = el("div", { class: "field field-check", "data-field": path }, label, hint);
  return {
    element: wrap,
    raw: () => (touched || options.required || schema.default !== undefined
      ? control.checked : undefined),
    collect() {
      if (!options.required && schema.default === undefined && !touched) return absent();
      return { value: control.checked, explicit: touched, errors: [] };
    },
  };
}

/** A select of fixed choices; option values are the choices as text, sent as their own type. */
function enumField(schema, path, options) {
  const choices = choicesOf(schema);
  const control = el("select", { name: path });
  const initial = firstDefined(options.initial, schema.default);
  const hasInitial = choices.some((choice) => sameValue(choice.value, initial));
  if (!options.required || !hasInitial) {
    const text = options.required ? "— choose —" : "— none —";
    control.append(el("option", { value: "", text }));
  }
  for (const choice of choices) {
    const option = el("option", { value: choiceLabel(choice.value), text: choice.label });
    if (sameValue(choice.value, initial)) option.selected = true;
    control.append(option);
  }
  const offset = control.options.length - choices.length;
  const wrap = fieldShell(schema, path, options, control);
  const selected = () => control.selectedIndex >= offset
    ? choices[control.selectedIndex - offset] : undefined;
  return {
    element: wrap,
    raw: () => (selected() ? selected().value : undefined),
    collect() {
      const choice = selected();
      if (!choice) return options.required ? missing(wrap, control) : absent();
      return { value: choice.value, explicit: !sameValue(choice.value, schema.default),
        errors: [] };
    },
  };
}

function sameValue(a, b) {
  return a === b || (a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b));
}

function constField(schema, path, options) {
  const control = el("input", { type: "text", name: path, readOnly: true,
    value: choiceLabel(schema.const) });
  const wrap = fieldShell(schema, path, options, control);
  return {
    element: wrap,
    raw: () => schema.const,
    collect: () => (options.required ? { value: schema.const, explicit: false, errors: [] }
      : absent()),
  };
}

/** Raw JSON, for what the form cannot lay out (any type, unions, free-form objects). */
function jsonField(schema, path, options) {
  const control = el("textarea", { name: path, rows: 3, class: "code", placeholder: "JSON value" });
  control.spellcheck = false;
  const initial = firstDefined(options.initial, schema.default);
  if (initial !== undefined) {
    control.value = typeof initial === "string" && options.initial !== undefined
      ? initial : JSON.stringify(initial, null, 2);
  }
  const wrap = fieldShell(schema, path, options, control);
  return {
    element: wrap,
    raw: () => control.value,
    collect() {
      const text = control.value.trim();
      if (text === "") return options.required ? missing(wrap, control) : absent();
      try {
        return { value: JSON.parse(text), explicit: true, errors: [] };
      } catch (error) {
        return invalid(wrap, control, "Not valid JSON (" + error.message + ").");
      }
    },
  };
}

/** An object: its properties as fields (a fieldset when nested); left out when optional and
 * untouched. */
function objectField(schema, path, options) {
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const initial = firstDefined(options.initial, schema.default);
  const values = isObject(initial) ? initial : {};
  const depth = options.depth || 0;
  const children = Object.keys(schema.properties || {}).map((key) => ({
    key,
    field: schemaField(schema.properties[key], joinPath(path, key), { root: options.root,
      required: required.has(key), initial: values[key], depth: depth + 1,
      refs: options.refs }),
  }));
  const body = children.map((child) => child.field.element);
  let element;
  if (path === "" && !options.label) {
    element = el("div", { class: "fields" }, body);
  } else {
    element = el("fieldset", { class: "object", "data-field": path },
      el("legend", {}, fieldLabel(schema, path, options), requiredMark(options.required)),
      schema.description ? el("p", { class: "hint", text: schema.description }) : null,
      body.length ? body : muted("No properties."));
  }
  return {
    element,
    raw() {
      const out = {};
      for (const { key, field } of children) {
        const value = field.raw();
        if (value !== undefined && value !== "") out[key] = value;
      }
      return out;
    },
    collect() {
      const value = {};
      const errors = [];
      let explicit = false;
      for (const { key, field } of children) {
        const result = field.collect();
        errors.push(...result.errors);
        if (result.value !== undefined) value[key] = result.value;
        if (result.explicit) explicit = true;
      }
      if (path !== "" && !options.required && !explicit) return absent();
      return { value, explicit, errors };
    },
  };
}

/** An array: items added and removed one by one (any item type), or checkboxes for choices. */
function arrayField(schema, path, options) {
  const itemSchema = Array.isArray(schema.items) ? false : (schema.items || {});
  if (itemSchema === false) return jsonField(schema, path, options);
  const resolvedItem = resolveSchema(itemSchema, options.root, 0);
  const choices = choicesOf(resolvedItem);
  if (choices) return choiceArrayField(schema, path, options, choices);
  const depth = options.depth || 0;
  const list = el("ol", { class: "array-items" });
  const items = [];
  const add = el("button", { type: "button", class: "btn small add-item", "data-path": path,
    text: "Add item" });
  const wrap = el("fieldset", { class: "array", "data-field": path },
    el("legend", {}, fieldLabel(schema, path, options), requiredMark(options.required)),
    schema.description ? el("p", { class: "hint", text: schema.description }) : null,
    list, el("div", { class: "array-actions" }, add));

  function addItem(initial) {
    const index = items.length;
    const itemPath = joinPath(path, index);
    const field = schemaField(itemSchema, itemPath, { root: options.root, required: true,
      initial, label: "Item " + (index + 1), depth: depth + 1, refs: options.refs });
    const remove = el("button", { type: "button", class: "btn small subtle remove-item",
      "data-path": itemPath, text: "Remove", "aria-label": "Remove item " + (index + 1) });
    remove.addEventListener("click", () => removeItem(index));
    const item = el("li", { class: "array-item" }, field.element, remove);
    items.push({ field, item });
    list.append(item);
    add.disabled = typeof schema.maxItems === "number" && items.length >= schema.maxItems;
    return field;
  }

  function rebuild(values) {
    list.replaceChildren();
    items.length = 0;
    values.forEach((value) => addItem(value));
    add.disabled = typeof schema.maxItems === "number" && items.length >= schema.maxItems;
  }

  function removeItem(index) {
    const values = items.map((entry) => entry.field.raw());
    values.splice(index, 1);
    rebuild(values);
  }

  add.addEventListener("click", () => {
    const field = addItem(undefined);
    const first = field.element.querySelector("input, select, textarea");
    if (first) first.focus();
  });
  const initial = firstDefined(options.initial, schema.default);
  if (Array.isArray(initial)) rebuild(initial);
  return {
    element: wrap,
    raw: () => items.map((entry) => entry.field.raw()),
    collect() {
      if (!items.length && !options.required) return absent();
      const value = [];
      const errors = [];
      for (const { field } of items) {
        const result = field.collect();
        errors.push(...result.errors);
        value.push(result.value === undefined ? null : result.value);
      }
      const problem = itemsProblem(schema, value.length);
      if (problem) errors.push({ wrap, control: add, message: problem });
      return { value, explicit: items.length > 0 && !sameValue(value, schema.default), errors };
    },
  };
}

function itemsProblem(schema, count) {
  if (typeof schema.minItems === "number" && count < schema.minItems) {
    return "At least " + schema.minItems + " item" + (schema.minItems === 1 ? "" : "s") + ".";
  }
  if (typeof schema.maxItems === "number" && count > schema.maxItems) {
    return "At most " + schema.maxItems + " items.";
  }
  return "";
}

/** An array of fixed choices: one checkbox per choice, all named by the array's path. */
function choiceArrayField(schema, path, options, choices) {
  const initial = firstDefined(options.initial, schema.default);
  const selected = Array.isArray(initial) ? initial : [];
  const boxes = choices.map((choice) => {
    const box = el("input", { type: "checkbox", name: path, value: choiceLabel(choice.value),
      id: nextFieldId() });
    box.checked = selected.some((value) => sameValue(value, choice.value));
    return { box, choice };
  });
  const wrap = el("fieldset", { class: "array choices", "data-field": path },
    el("legend", {}, fieldLabel(schema, path, options), requiredMark(options.required)),
    schema.description ? el("p", { class: "hint", text: schema.description }) : null,
    el("div", { class: "choice-list" }, boxes.map(({ box, choice }) =>
      el("label", { for: box.id, class: "check-label" }, box,
        el("span", { text: choice.label })))));
  const picked = () => boxes.filter(({ box }) => box.checked).map(({ choice }) => choice.value);
  return {
    element: wrap,
    raw: picked,
    collect() {
      const value = picked();
      if (!value.length && !options.required) return absent();
      const problem = itemsProblem(schema, value.length);
      const errors = problem ? [{ wrap, control: boxes[0] && boxes[0].box, message: problem }]
        : [];
      return { value, explicit: value.length > 0 && !sameValue(value, schema.default), errors };
    },
  };
}

/** A form's fields for an object schema (a tool's inputSchema, an elicitation's schema). */
function formFields(schema) {
  const root = isObject(schema) ? schema : { type: "object", properties: {} };
  return schemaField(root, "", { root, required: true, depth: 0, refs: ["#"] });
}

function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const node of form.querySelectorAll(".invalid")) node.classList.remove("invalid");
  for (const node of form.querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
  }
}

/** Shows each error under its field and focuses the first one. */
function showFieldErrors(form, errors) {
  clearFieldErrors(form);
  for (const { wrap, control, message } of errors) {
    const id = nextFieldId();
    wrap.classList.add("invalid");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", id);
    }
    const note = el("p", { class: "field-error", id, role: "alert", text: message });
    const anchor = wrap.tagName === "FIELDSET" ? wrap.querySelector(":scope > .array-actions")
      : null;
    if (anchor) anchor.after(note);
    else wrap.append(note);
  }
  const first = errors.find((error) => error.control);
  if (first) first.control.focus();
}

/** Clears a field's error as soon as the user edits it. */
function clearErrorsOnInput(form) {
  const clear = (event) => {
    const wrap = event.target.closest(".field, fieldset");
    if (!wrap || !wrap.classList.contains("invalid")) return;
    wrap.classList.remove("invalid");
    for (const note of wrap.querySelectorAll(":scope > .field-error")) note.remove();
    event.target.removeAttribute("aria-invalid");
  };
  form.addEventListener("input", clear);
  form.addEventListener("change", clear);
}

/* ------------------------------------------------------------------------------------------ */
/* Content rendering (tool results, prompt messages, resources)                                 */
/* ------------------------------------------------------------------------------------------ */

const MIME_PATTERN = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i;

/** A base64 data: URL when the media type and data look right, else null. */
function dataUrl(mimeType, data) {
  if (typeof mimeType !== "string" || typeof data !== "string") return null;
  const clean = data.replace(/\s+/g, "");
  if (!MIME_PATTERN.test(mimeType) || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) return null;
  return "data:" + mimeType + ";base64," + clean;
}

/** Text in a <pre>, pretty-printed when it is JSON. */
function textBlock(text) {
  return el("pre", { class: "text", text: prettyText(text) });
}

function mediaError(kind, mimeType) {
  return el("p", { class: "error", text: "Could not show this " + kind + " (" +
    (mimeType || "no media type") + ")." });
}

function imageBlock(mimeType, data) {
  const src = dataUrl(mimeType, data);
  if (!src || !mimeType.startsWith("image/")) return mediaError("image", mimeType);
  return el("img", { class: "media", src, alt: "Image (" + mimeType + ")" });
}

function audioBlock(mimeType, data) {
  const src = dataUrl(mimeType, data);
  if (!src || !mimeType.startsWith("audio/")) return mediaError("audio", mimeType);
  return el("audio", { class: "media", controls: true, src });
}

function base64ToBytes(data) {
  const binary = atob(data.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function bytesToBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** A download link for base64 content. */
function downloadLink(uri, mimeType, blob) {
  let href;
  try {
    const type = MIME_PATTERN.test(mimeType || "") ? mimeType : "application/octet-stream";
    href = URL.createObjectURL(new Blob([base64ToBytes(blob)], { type }));
    objectUrls.push(href);
  } catch (error) {
    return el("p", { class: "error", text: "The content is not valid base64." });
  }
  const name = String(uri || "download").split(/[/\\?#]/).filter(Boolean).pop() || "download";
  return el("a", { class: "download", href, download: name,
    text: "Download " + name + " (" + (mimeType || "binary") + ", " +
      formatBytes(Math.floor((blob.length * 3) / 4)) + ")" });
}

/** A resource's contents (embedded in a result, or read): text, image, audio or a download. */
function resourceBlock(resource) {
  if (!isObject(resource)) return el("pre", { class: "text", text: pretty(resource) });
  const mimeType = typeof resource.mimeType === "string" ? resource.mimeType : "";
  const head = el("div", { class: "resource-head" },
    el("code", { class: "uri", text: resource.uri || "" }),
    mimeType ? badge(mimeType) : null);
  let body;
  if (typeof resource.text === "string") body = textBlock(resource.text);
  else if (typeof resource.blob === "string") {
    const preview = mimeType.startsWith("image/") ? imageBlock(mimeType, resource.blob)
      : mimeType.startsWith("audio/") ? audioBlock(mimeType, resource.blob) : null;
    body = [preview, downloadLink(resource.uri, mimeType, resource.blob)];
  } else body = muted("No content.");
  return el("div", { class: "resource" }, head, body);
}

/** A link to a resource: opens it on the Resources page. */
function resourceLinkBlock(item) {
  const uri = typeof item.uri === "string" ? item.uri : "";
  return el("div", { class: "resource-link" },
    el("a", { href: "#/resources/" + encodeURIComponent(uri),
      text: (item.title || item.name || uri) + (item.name || item.title ? " — " + uri : "") }),
    item.mimeType ? badge(String(item.mimeType)) : null,
    item.description ? el("p", { class: "hint", text: item.description }) : null);
}

/** One MCP content item. */
function contentBlock(item) {
  if (!isObject(item)) return el("pre", { class: "text", text: pretty(item) });
  let body;
  switch (item.type) {
    case "text": body = textBlock(item.text); break;
    case "image": body = imageBlock(item.mimeType, item.data); break;
    case "audio": body = audioBlock(item.mimeType, item.data); break;
    case "resource": body = resourceBlock(item.resource); break;
    case "resource_link": body = resourceLinkBlock(item); break;
    default: body = el("pre", { class: "text", text: pretty(item) });
  }
  return el("div", { class: "content-item", "data-type": String(item.type || "unknown") }, body);
}

function contentList(content) {
  const items = Array.isArray(content) ? content : content === undefined ? [] : [content];
  if (!items.length) return muted("No content.");
  return el("div", { class: "content-list" }, items.map(contentBlock));
}

/* ------------------------------------------------------------------------------------------ */
/* Servers page                                                                                 */
/* ------------------------------------------------------------------------------------------ */

const STATE_KINDS = { connected: "ok", starting: "info", failed: "danger", refused: "danger",
  disabled: "muted", stopped: "warn" };

async function renderServers(section, ctx) {
  const summary = el("span");
  const tbody = el("tbody");
  const refreshNow = button("Refresh", { class: "btn" });
  section.append(
    pageHeader("Servers", summary, refreshNow),
    el("div", { class: "card flush" }, el("table", { class: "table servers" },
      el("thead", {}, el("tr", {}, ["Server", "Transport", "State", "Served", "Tools",
        "Restarts", "Stderr", ""].map((h) => el("th", { scope: "col", text: h })))),
      tbody)));
  // In App mode the servers are the plugged.in App's: shown here, switched on and off there.
  const config = await ctx.api("/api/v1/config").catch(() => null);
  const appMode = isObject(config) && config.mode === "app";
  if (appMode) {
    section.insertBefore(el("p", { class: "card note app-owned" },
      "These servers come from the plugged.in App: add them and switch them on and off there. ",
      el("a", { href: "https://plugged.in", target: "_blank", rel: "noopener noreferrer",
        text: "Open the plugged.in App" })), section.children[1]);
  }
  const refresh = async () => {
    const data = await ctx.api("/api/v1/servers");
    if (!ctx.alive) return;
    const servers = Array.isArray(data && data.servers) ? data.servers : [];
    updateServerRows(tbody, servers, refresh, appMode);
    const connected = servers.filter((server) => server.state === "connected").length;
    summary.textContent = servers.length + " configured, " + connected + " connected. " +
      "Refreshed every 3 s.";
  };
  refreshNow.addEventListener("click", () => refresh().catch(report));
  await refresh();
  ctx.every(3000, () => refresh().catch(report));
}

/** Updates the rows in place (keyed by name) so a refresh never steals a click. */
function updateServerRows(tbody, servers, refresh, appMode) {
  const existing = new Map();
  for (const row of tbody.querySelectorAll("tr[data-server]")) {
    existing.set(row.dataset.server, row);
  }
  const rows = servers.map((server) => {
    const name = String(server.name);
    const row = existing.get(name) || serverRow(name, refresh);
    existing.delete(name);
    fillServerRow(row, server, appMode);
    return row;
  });
  setChildren(tbody, ...(rows.length ? rows : [emptyRow(8, "No servers are configured.")]));
  for (const stderr of tbody.querySelectorAll(".stderr[data-fresh]")) {
    stderr.scrollTop = stderr.scrollHeight;
    delete stderr.dataset.fresh;
  }
}

function serverRow(name, refresh) {
  const row = el("tr", { "data-server": name },
    el("td", { class: "name" }, el("strong", { text: name }), el("div", { class: "description" })),
    el("td", {}, el("code", { class: "transport" }), el("div", { class: "generation" })),
    el("td", {}, el("span", { class: "state badge" }), el("div", { class: "reason" })),
    el("td", { class: "served" }),
    el("td", { class: "tools num" }),
    el("td", { class: "restarts num" }),
    el("td", { class: "stderr-cell" }, el("pre", { class: "stderr" })),
    el("td", { class: "actions" }));
  row.refresh = refresh;
  return row;
}

function fillServerRow(row, server, appMode) {
  const state = String(server.state || "unknown");
  row.querySelector(".description").textContent = serverNote(server, state);
  row.querySelector(".transport").textContent = server.transport || "—";
  row.querySelector(".generation").textContent = server.generation
    ? "MCP " + server.generation : "";
  const stateBadge = row.querySelector(".state");
  stateBadge.textContent = state;
  stateBadge.className = "state badge badge-" + (STATE_KINDS[state] || "muted");
  row.querySelector(".reason").textContent = server.reason ? String(server.reason) : "";
  row.querySelector(".served").textContent = server.served ? "yes" : "no";
  row.querySelector(".tools").textContent = String(server.tools ?? 0);
  row.querySelector(".restarts").textContent = String(server.restarts ?? 0);
  const stderr = row.querySelector(".stderr");
  const lines = Array.isArray(server.stderr) ? server.stderr.slice(-50).map(String) : [];
  const text = lines.join("\n");
  if (stderr.textContent !== text) {
    stderr.textContent = text;
    // Scrolled to the newest line once the row is on the page.
    stderr.dataset.fresh = "true";
  }
  const awaitsUser = state === "failed" && /OAuth/.test(String(server.reason || ""));
  fillServerActions(row, server.name, state, enabledOf(server), appMode, awaitsUser);
}

/** What the server's description adds to its state and reason (e.g. when it retries). */
function serverNote(server, state) {
  const description = typeof server.description === "string" ? server.description : "";
  if (!description || description === state) return "";
  if (server.reason && description.includes(String(server.reason))) {
    const retry = description.match(/\(retry[^)]*\)/);
    return retry ? retry[0].slice(1, -1) : "";
  }
  return description;
}

/**
 * Whether a server is switched on: as the API says when it says so; off when its state is
 * "disabled"; on when clients are served it; else unknown (a server switched off by the
 * operator and one outside the active workspace both look "not served").
 */
function enabledOf(server) {
  if (typeof server.enabled === "boolean") return server.enabled;
  if (server.state === "disabled") return false;
  return server.served === true ? true : null;
}

/**
 * Restart, and enable and/or disable (what applies; not in App mode, where the App owns the
 * servers); rebuilt only when that changes.
 */
function fillServerActions(row, name, state, enabled, appMode, awaitsUser) {
  const cell = row.querySelector(".actions");
  const key = state + "/" + enabled + "/" + appMode + "/" + awaitsUser;
  if (cell.dataset.key === key) return;
  cell.dataset.key = key;
  const idle = state === "disabled" || state === "stopped";
  const restart = button("Restart", { class: "btn small restart", disabled: idle,
    title: idle ? "The server is not running" : "Close the connection and connect again" });
  restart.addEventListener("click", () => serverAction(row, name, "restart", restart));
  const buttons = [restart];
  if (awaitsUser) {
    const authorize = button("Authorize", { class: "btn small primary authorize",
      title: "Start the server's OAuth authorization" });
    authorize.addEventListener("click", () => startAuthorization(row, name, authorize));
    buttons.unshift(authorize);
  }
  if (appMode) {
    setChildren(cell, el("div", { class: "button-row" }, buttons));
    return;
  }
  if (enabled !== true) {
    const enable = button("Enable", { class: "btn small enable" });
    enable.addEventListener("click", () => serverAction(row, name, "enable", enable));
    buttons.push(enable);
  }
  if (enabled !== false) {
    const disable = button("Disable", { class: "btn small subtle disable" });
    disable.addEventListener("click", () => serverAction(row, name, "disable", disable));
    buttons.push(disable);
  }
  setChildren(cell, el("div", { class: "button-row" }, buttons));
}

const SERVER_ACTION_DONE = { restart: "Restarting", enable: "Enabled", disable: "Disabled" };

/**
 * Starts a server's OAuth authorization: the proxy answers with the URL to open (a link here,
 * as a page may not open windows on its own after a request), then takes the redirect itself.
 */
async function startAuthorization(row, name, control) {
  control.disabled = true;
  try {
    const data = await api("/api/v1/servers/" + encodeSegment(name) + "/authorize",
      { method: "POST" });
    const link = el("a", { class: "authorize-link", href: String(data.url), target: "_blank",
      rel: "noopener noreferrer", text: "Open the authorization page" });
    const cell = row.querySelector(".actions");
    for (const old of cell.querySelectorAll(".authorize-link")) old.remove();
    cell.append(link);
    notify("Authorize " + name + " in the page that opens; the proxy connects once you have.");
  } catch (error) {
    report(error);
  } finally {
    control.disabled = false;
  }
}

async function serverAction(row, name, action, control) {
  control.disabled = true;
  try {
    await api("/api/v1/servers/" + encodeSegment(name) + "/" + action, { method: "POST" });
    notify(SERVER_ACTION_DONE[action] + " " + name + ".");
    await row.refresh();
  } catch (error) {
    report(error);
  } finally {
    control.disabled = false;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Tools page                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/** Badges for a tool's annotations, output schema and task support. */
function toolBadges(tool) {
  const notes = isObject(tool.annotations) ? tool.annotations : {};
  const badges = [];
  if (notes.readOnlyHint === true) badges.push(badge("read-only", "ok"));
  if (notes.destructiveHint === true && notes.readOnlyHint !== true) {
    badges.push(badge("destructive", "danger"));
  }
  if (notes.idempotentHint === true) badges.push(badge("idempotent", "info"));
  if (notes.openWorldHint === true) badges.push(badge("open-world", "warn"));
  if (isObject(tool.outputSchema)) badges.push(badge("structured output", "muted"));
  const execution = isObject(tool.execution) ? tool.execution : {};
  if (execution.taskSupport && execution.taskSupport !== "forbidden") {
    badges.push(badge("task: " + execution.taskSupport, "muted"));
  }
  return badges.length ? el("div", { class: "badges" }, badges) : null;
}

function firstLine(text) {
  return typeof text === "string" ? text.split("\n")[0] : "";
}

async function renderTools(section, ctx, open) {
  const search = el("input", { type: "search", id: "tool-search", class: "search",
    placeholder: "Search name, title or description", autocomplete: "off",
    "aria-label": "Search tools" });
  const count = el("p", { class: "muted small" });
  const list = el("ul", { class: "item-list" });
  const detail = el("div", { class: "detail" }, card(null, muted("Pick a tool to call it.")));
  const view = { ctx, detail, run: null, tool: null, list };
  section.append(
    pageHeader("Tools", "The merged catalog, as clients see it. Pick a tool to call it."),
    el("div", { class: "split" },
      el("div", { class: "card list-pane" }, search, count, list), detail));
  const load = async () => {
    const query = search.value.trim();
    const data = await ctx.api("/api/v1/tools" + (query ? "?q=" + encodeURIComponent(query) : ""));
    if (!ctx.alive || search.value.trim() !== query) return;
    const tools = Array.isArray(data && data.tools) ? data.tools : [];
    count.textContent = tools.length + (tools.length === 1 ? " tool" : " tools") +
      (query ? " match" : "");
    setChildren(list, ...tools.map((tool) => toolItem(view, tool)));
    if (!tools.length) list.append(el("li", { class: "empty" }, muted("No tools.")));
    markSelected(list, "tool", view.tool && view.tool.name);
    return tools;
  };
  search.addEventListener("input", debounce(() => load().catch(report), 200));
  // Leaving the page cancels the call in flight.
  ctx.controller.signal.addEventListener("abort", () => {
    if (view.run) cancelRun(view.run);
  });
  const tools = await load();
  const wanted = tools && tools.find((tool) => tool.name === open);
  if (wanted) {
    openTool(view, wanted);
    scrollToSelected(list);
  } else if (open) showError("No tool named " + open + ".");
}

/** Scrolls a list so its selected item shows. */
function scrollToSelected(list) {
  const item = list.querySelector(".selected");
  if (item) item.scrollIntoView({ block: "nearest" });
}

function markSelected(list, key, value) {
  for (const item of list.querySelectorAll("[data-" + key + "]")) {
    const on = item.getAttribute("data-" + key) === value;
    item.classList.toggle("selected", on);
    if (on) item.setAttribute("aria-current", "true");
    else item.removeAttribute("aria-current");
  }
}

function toolItem(view, tool) {
  const name = String(tool.name);
  const title = tool.title && tool.title !== name ? tool.title : "";
  const item = el("button", { type: "button", class: "item", "data-tool": name },
    el("span", { class: "item-name", text: name }),
    title ? el("span", { class: "item-title", text: title }) : null,
    tool.description ? el("span", { class: "item-desc", text: firstLine(tool.description) })
      : null,
    toolBadges(tool));
  item.addEventListener("click", () => openTool(view, tool));
  return el("li", {}, item);
}

/** Opens a tool: its description, a form from its input schema, and the call's output. */
function openTool(view, tool) {
  if (view.run) cancelRun(view.run);
  view.run = null;
  view.tool = tool;
  setSubroute("tools", tool.name);
  markSelected(view.list, "tool", tool.name);
  const fields = formFields(tool.inputSchema);
  const call = el("button", { type: "submit", id: "tool-call", class: "btn primary",
    text: "Call" });
  const cancel = button("Cancel", { id: "tool-cancel", disabled: true });
  const form = el("form", { id: "tool-form", class: "schema-form", novalidate: true },
    fields.element,
    fields.element.querySelector("input, select, textarea, button") ? null
      : muted("This tool takes no arguments."),
    el("div", { class: "form-actions" }, call, cancel));
  clearErrorsOnInput(form);
  const progressBar = el("progress", { max: 1 });
  const progressText = el("span", { class: "progress-text" });
  const progress = el("div", { id: "tool-progress", class: "progress", hidden: true },
    progressBar, progressText);
  const logs = el("ul", { id: "tool-logs", class: "logs" });
  const logBox = el("div", { class: "log-box", hidden: true }, el("h3", { text: "Log" }), logs);
  const questions = el("div", { class: "questions" });
  const result = el("div", { id: "tool-result", class: "result", "aria-live": "polite" });
  Object.assign(view, { form, fields, call, cancel, progress, progressBar, progressText, logs,
    logBox, questions, result });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    startCall(view);
  });
  cancel.addEventListener("click", () => {
    if (view.run) cancelRun(view.run);
  });
  setChildren(view.detail,
    el("div", { class: "card" },
      el("div", { class: "detail-head" },
        el("h2", { text: tool.title || tool.name }),
        tool.title ? el("code", { class: "qualified", text: tool.name }) : null),
      toolBadges(tool),
      tool.description ? el("p", { class: "description", text: tool.description }) : null,
      schemaDetails("Input schema", tool.inputSchema),
      isObject(tool.outputSchema) ? schemaDetails("Output schema", tool.outputSchema) : null,
      form),
    el("div", { class: "card run" }, el("h2", { class: "card-title", text: "Call" }),
      questions, progress, logBox, result));
}

function schemaDetails(title, schema) {
  return el("details", { class: "schema" }, el("summary", { text: title }),
    el("pre", { class: "code", text: pretty(schema) }));
}

function resetRunView(view) {
  view.progress.hidden = true;
  view.progressBar.max = 1;
  view.progressBar.removeAttribute("value");
  view.progressText.textContent = "";
  view.logs.replaceChildren();
  view.logBox.hidden = true;
  view.questions.replaceChildren();
  setChildren(view.result, el("p", { class: "muted running", text: "Calling…" }));
}

function setRunning(view, running) {
  view.call.disabled = running;
  view.cancel.disabled = !running;
  view.form.classList.toggle("busy", running);
}

/** Checks the form, then calls the tool and follows its event stream. */
function startCall(view) {
  const collected = view.fields.collect();
  showFieldErrors(view.form, collected.errors);
  if (collected.errors.length) return;
  resetRunView(view);
  const run = { view, tool: view.tool, controller: new AbortController(), callId: null,
    settled: false, cancelled: false, queue: [], asking: null };
  view.run = run;
  setRunning(view, true);
  executeCall(run, collected.value || {})
    .catch((error) => callFailed(run, error))
    .finally(() => finishRun(run));
}

function finishRun(run) {
  const view = run.view;
  if (view.run !== run) return;
  view.run = null;
  setRunning(view, false);
  run.queue = [];
  view.questions.replaceChildren();
  if (!run.settled) {
    showRunNote(view, run.cancelled ? "Call cancelled." : "The call ended without a result.");
  }
}

async function executeCall(run, args) {
  const response = await fetch("/api/v1/tools/call", {
    method: "POST",
    headers: apiHeaders(true, "text/event-stream"),
    body: JSON.stringify({ name: run.tool.name, arguments: args }),
    signal: run.controller.signal,
    credentials: "same-origin",
  });
  const type = response.headers.get("Content-Type") || "";
  if (response.ok && type.includes("text/event-stream") && response.body) {
    await readEvents(response.body, (event) => onCallEvent(run, event));
    return;
  }
  const data = await readBody(response);
  if (response.ok) {
    run.settled = true;
    showResult(run.view, run.tool, data);
    return;
  }
  run.settled = true;
  if (response.status === 401) report(new ApiError(401, errorMessage(401, data)));
  else showCallError(run.view, response.status, errorMessage(0, data));
}

function callFailed(run, error) {
  if (error && error.name === "AbortError") return;
  run.settled = true;
  showCallError(run.view, 0, "The proxy did not answer (" + (error && error.message) + ").");
}

/** Cancels a running call: tells the proxy (when it named the call) and stops reading. */
function cancelRun(run) {
  if (run.cancelled) return;
  run.cancelled = true;
  if (run.callId) {
    api("/api/v1/calls/" + encodeSegment(run.callId), { method: "DELETE" }).catch((error) => {
      if (error.status !== 404) report(error);
    });
  }
  run.controller.abort();
}

/** Reads a text/event-stream body, calling `onEvent({event, data})` for each event. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // A lone "\r" at the end may be half of "\r\n": keep it for the next chunk.
    const held = buffer.endsWith("\r") ? "\r" : "";
    let text = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
    let cut = text.indexOf("\n\n");
    while (cut >= 0) {
      const event = parseEvent(text.slice(0, cut));
      text = text.slice(cut + 2);
      if (event) onEvent(event);
      cut = text.indexOf("\n\n");
    }
    buffer = text + held;
  }
  const last = parseEvent(buffer.replace(/\r\n?/g, "\n"));
  if (last) onEvent(last);
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  let seen = false;
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") {
      data.push(value);
      seen = true;
    }
  }
  return seen ? { event, data: data.join("\n") } : null;
}

function onCallEvent(run, event) {
  if (run.view.run !== run) return;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch (error) {
    data = event.data;
  }
  switch (event.event) {
    case "call": run.callId = isObject(data) ? data.id : null; break;
    case "progress": showProgress(run.view, isObject(data) ? data : {}); break;
    case "log": addLog(run.view, isObject(data) ? data : { level: "info", data }); break;
    case "elicitation":
    case "sampling":
      if (isObject(data)) askQuestion(run, Object.assign({ kind: event.event }, data));
      break;
    case "result":
      run.settled = true;
      showResult(run.view, run.tool, data);
      break;
    case "error":
      run.settled = true;
      if (run.cancelled || (isObject(data) && data.status === 499)) {
        showRunNote(run.view, "Call cancelled.");
      } else if (isObject(data) && data.status === 401) {
        report(new ApiError(401, String(data.error)));
      }
      else {
        showCallError(run.view, isObject(data) ? data.status : 0,
          isObject(data) ? String(data.error || "the call failed") : String(data));
      }
      break;
    default: break;
  }
}

function showProgress(view, data) {
  const progress = Number(data.progress);
  const total = Number(data.total);
  view.progress.hidden = false;
  if (Number.isFinite(total) && total > 0 && Number.isFinite(progress)) {
    view.progressBar.max = total;
    view.progressBar.value = Math.min(progress, total);
  } else {
    view.progressBar.removeAttribute("value");
  }
  const figures = Number.isFinite(progress)
    ? String(progress) + (Number.isFinite(total) && data.total !== undefined ? "/" + total : "")
    : "";
  const message = typeof data.message === "string" ? data.message : "";
  view.progressText.textContent = [figures, message].filter(Boolean).join(" ");
}

function addLog(view, data) {
  const level = typeof data.level === "string" ? data.level : "info";
  const text = typeof data.data === "string" ? data.data : pretty(data.data);
  view.logBox.hidden = false;
  view.logs.append(el("li", { class: "log log-" + level.toLowerCase() },
    el("span", { class: "log-level", text: level }),
    data.logger ? el("span", { class: "log-logger", text: String(data.logger) }) : null,
    el("span", { class: "log-text", text })));
}

function showRunNote(view, text) {
  setChildren(view.result, el("p", { class: "cancelled muted", text }));
}

function showCallError(view, status, message) {
  const text = (status ? status + ": " : "") + message;
  setChildren(view.result, el("div", { class: "error" },
    el("strong", { text: status ? "Call failed (" + status + ")" : "Call failed" }),
    el("p", { text: message })));
  showError(text);
}

/** Renders a CallToolResult in the Tools page's result pane. */
function showResult(view, tool, result) {
  setChildren(view.result, ...resultParts(tool, result));
}

/**
 * A CallToolResult as nodes: its content, its structured content (checked against the tool's
 * outputSchema when `tool` is given) and the raw result.
 */
function resultParts(tool, result) {
  if (!isObject(result)) return [el("pre", { class: "text", text: pretty(result) })];
  const content = contentList(result.content);
  const parts = [];
  if (result.isError === true) {
    parts.push(el("div", { class: "error" },
      el("strong", { text: "The tool reported an error" }), content));
  } else parts.push(content);
  if (result.structuredContent !== undefined) {
    parts.push(el("h3", { text: "Structured content" }),
      el("pre", { class: "structured", text: pretty(result.structuredContent) }),
      tool ? outputCheck(tool, result.structuredContent) : null);
  }
  parts.push(el("details", { class: "raw" }, el("summary", { text: "Raw result" }),
    el("pre", { class: "code", text: pretty(result) })));
  return parts;
}

/** Whether structured content has every key the tool's outputSchema requires. */
function outputCheck(tool, structured) {
  if (!isObject(tool.outputSchema)) {
    return el("p", { class: "schema-check muted", text: "The tool declares no outputSchema." });
  }
  const schema = resolveSchema(tool.outputSchema, tool.outputSchema, 0);
  const required = Array.isArray(schema.required) ? schema.required : [];
  const missingKeys = required.filter((key) =>
    !(isObject(structured) && Object.prototype.hasOwnProperty.call(structured, key)));
  if (!isObject(structured)) {
    return el("p", { class: "schema-check mismatch", text: "Does not match outputSchema: " +
      "structured content is not an object." });
  }
  if (missingKeys.length) {
    return el("p", { class: "schema-check mismatch",
      text: "Does not match outputSchema: missing " + missingKeys.join(", ") + "." });
  }
  return el("p", { class: "schema-check match", text: "Matches outputSchema" +
    (required.length ? " (required: " + required.join(", ") + ")." : ".") });
}

/* Questions a server asks during a call (elicitation, sampling), answered one at a time. */

function askQuestion(run, question) {
  run.queue.push(question);
  if (!run.asking) nextQuestion(run);
}

function nextQuestion(run) {
  const question = run.queue.shift();
  run.asking = question || null;
  if (!question) return;
  const form = questionForm(question, (answerForm, body) =>
    answerQuestion(run, question, answerForm, body));
  setChildren(run.view.questions, form);
  const first = form.querySelector("input, select, textarea");
  if (first) first.focus();
}

async function answerQuestion(run, question, form, body) {
  const path = run.callId ? "/api/v1/calls/" + encodeSegment(run.callId) + "/answers/" +
    encodeSegment(question.id) : null;
  if (!(await postAnswer(path, form, body))) return;
  form.remove();
  if (run.asking === question) nextQuestion(run);
}

/**
 * Posts the answer to a server's question with the form's buttons disabled; true once the
 * proxy took it (a failure is reported and the buttons come back). A null `path`: the proxy
 * did not name the call or chat the question belongs to.
 */
async function postAnswer(path, form, body) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => {
    b.disabled = true;
  });
  try {
    if (!path) throw new ApiError(0, "The proxy did not name the call or chat asking.");
    await api(path, { method: "POST", body });
    return true;
  } catch (error) {
    report(error);
    buttons.forEach((b) => {
      b.disabled = false;
    });
    return false;
  }
}

/**
 * The form answering a server's question: `question.kind` "sampling" (a completion written by
 * hand) or else an elicitation. `answer(form, body)` sends the MCP result the person chose.
 */
function questionForm(question, answer) {
  return question.kind === "sampling" ? samplingForm(question, answer)
    : elicitationForm(question, answer);
}

/** An elicitation as a form made from its requestedSchema: accept, decline or cancel. */
function elicitationForm(question, answer) {
  const fields = formFields(question.requestedSchema);
  const accept = el("button", { type: "submit", id: "elicitation-accept", class: "btn primary",
    text: "Accept" });
  const decline = button("Decline", { id: "elicitation-decline" });
  const cancel = button("Cancel", { id: "elicitation-cancel", class: "btn subtle" });
  const form = el("form", { id: "elicitation-form", class: "question", novalidate: true },
    el("h3", { text: "The server asks" }),
    el("p", { class: "message", text: String(question.message || "") }),
    fields.element,
    el("div", { class: "form-actions" }, accept, decline, cancel));
  clearErrorsOnInput(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const collected = fields.collect();
    showFieldErrors(form, collected.errors);
    if (collected.errors.length) return;
    answer(form, { action: "accept", content: collected.value || {} });
  });
  decline.addEventListener("click", () => answer(form, { action: "decline" }));
  cancel.addEventListener("click", () => answer(form, { action: "cancel" }));
  return form;
}

/** A sampling message's content (one item or several) as content blocks. */
function messageBlock(message) {
  const role = isObject(message) ? String(message.role || "") : "";
  return el("div", { class: "message-item" }, badge(role || "message", "muted"),
    contentList(isObject(message) ? message.content : message));
}

/** A sampling request answered by hand: its prompt shown, the person writes the completion. */
function samplingForm(question, answer) {
  const text = el("textarea", { name: "text", id: nextFieldId(), rows: 4, required: true,
    "aria-required": "true" });
  const send = el("button", { type: "submit", id: "sampling-send", class: "btn primary",
    text: "Send answer" });
  const messages = Array.isArray(question.messages) ? question.messages : [];
  const wrap = el("div", { class: "field" },
    el("label", { for: text.id, class: "field-label" }, "Your answer (as the model)",
      requiredMark(true)), text);
  const form = el("form", { id: "sampling-form", class: "question", novalidate: true },
    el("h3", { text: "The server asks for a completion" }),
    question.systemPrompt ? el("div", { class: "system-prompt" },
      el("strong", { text: "System prompt" }), el("pre", { class: "text",
        text: String(question.systemPrompt) })) : null,
    el("div", { class: "messages" }, messages.map(messageBlock)),
    question.maxTokens !== undefined ? el("p", { class: "muted small",
      text: "Max tokens: " + question.maxTokens }) : null,
    wrap,
    el("div", { class: "form-actions" }, send));
  clearErrorsOnInput(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!text.value.trim()) {
      showFieldErrors(form, [{ wrap, control: text, message: "This field is required." }]);
      return;
    }
    answer(form, { role: "assistant", content: { type: "text", text: text.value },
      model: "console", stopReason: "endTurn" });
  });
  return form;
}

/* ------------------------------------------------------------------------------------------ */
/* Playground page                                                                              */
/* ------------------------------------------------------------------------------------------ */
/*
 * A chat with a language model that calls this proxy's tools. The proxy holds the providers'
 * keys and speaks to them; the page sends the whole conversation each turn, in the neutral
 * shape the proxy answers with, and draws the turn's event stream as it comes. A key typed
 * here goes to the proxy once and is never shown or kept by the page.
 */

/** Where the playground's settings (never a key) are kept in the browser. */
const PLAYGROUND_STORE = "pluggedin.console.playground";
const COMPATIBLE_HINT = "Ollama: http://127.0.0.1:11434/v1, LM Studio: http://127.0.0.1:1234/v1";
/** What a provider did, by the kind of its error. */
const PROVIDER_FAILURES = {
  auth: "refused the key",
  rate_limit: "is limiting requests (rate limit)",
  context_length: "says the conversation is too long for the model",
  invalid_request: "refused the request",
  unavailable: "is unavailable",
};

/**
 * The conversation while the console is open (not stored): it survives a visit to another
 * page. `messages` is what the proxy last answered with, sent again with the next message.
 */
const playgroundMemory = { messages: [], usage: { input: 0, output: 0 } };

/** The settings kept from an earlier visit ({} when none or unreadable). */
function loadPlaygroundSettings() {
  try {
    const data = JSON.parse(localStorage.getItem(PLAYGROUND_STORE) || "{}");
    return isObject(data) ? data : {};
  } catch (error) {
    return {};
  }
}

/** Keeps the settings for the next visit. */
function savePlaygroundSettings(settings) {
  try {
    localStorage.setItem(PLAYGROUND_STORE, JSON.stringify(settings));
  } catch (error) {
    // A browser that stores nothing: the settings last as long as the page.
  }
}

/** A provider's failure in words: "OpenAI refused the key (401): Incorrect API key…". */
function providerFailure(title, provider) {
  const what = PROVIDER_FAILURES[provider.kind] || "answered with an error";
  const status = typeof provider.status === "number" ? " (" + provider.status + ")" : "";
  const message = typeof provider.message === "string" && provider.message
    ? ": " + provider.message : ".";
  return (title || "The provider") + " " + what + status + message;
}

/** The playground: settings on one side, the chat on the other. */
async function renderPlayground(section, ctx) {
  const body = el("div", { class: "playground-slot" }, muted("Loading…"));
  section.append(pageHeader("Playground", "Chat with a language model that calls this " +
    "proxy's tools. Keys stay on the proxy."), body);
  let info;
  try {
    info = await ctx.api("/api/v1/playground");
  } catch (error) {
    if (error.name === "AbortError") return;
    if (error.status === 401) throw error;
    setChildren(body, el("div", { class: "card" }, el("div", { class: "error" },
      el("strong", { text: "The playground is not available" }),
      el("p", { text: error.message }))));
    return;
  }
  if (!ctx.alive) return;
  const providers = isObject(info) && Array.isArray(info.providers)
    ? info.providers.filter((row) => isObject(row) && typeof row.id === "string") : [];
  if (!providers.length) {
    setChildren(body, card(null, muted("This proxy offers no model providers.")));
    return;
  }
  const view = {
    ctx,
    info,
    providers,
    provider: null,
    settings: loadPlaygroundSettings(),
    memory: playgroundMemory,
    turn: null,
    /** The text node the model's streamed answer is appended to (null: start a new one). */
    textNode: null,
    modelRequest: 0,
  };
  if (!isObject(view.settings.models)) view.settings.models = {};
  setChildren(body, el("div", { class: "playground" }, playgroundSettings(view),
    playgroundChat(view)));
  ctx.controller.signal.addEventListener("abort", () => {
    if (view.turn) stopTurn(view.turn, true);
  });
  const stored = providers.find((row) => row.id === view.settings.provider);
  const first = stored || providers.find((row) => row.ready === true) || providers[0];
  view.providerSelect.value = first.id;
  selectProvider(view, first);
  restoreConversation(view);
}

/* Settings: provider, key, base URL, model, system prompt, switches, tools. */

/** A provider as its select option shows it: its title, and whether it is set up. */
function providerLabel(row) {
  return String(row.title || row.id) + (row.ready === true ? "" : " (not set up)");
}

/** The settings pane; its controls are kept on `view`. */
function playgroundSettings(view) {
  const settings = view.settings;
  const info = view.info;
  view.providerSelect = el("select", { id: "playground-provider", name: "provider" },
    view.providers.map((row) => el("option", { value: row.id, text: providerLabel(row) })));
  view.providerSelect.addEventListener("change", () => {
    const row = view.providers.find((entry) => entry.id === view.providerSelect.value);
    if (row) selectProvider(view, row);
  });
  view.providerStatus = el("div", { class: "playground-provider-status", role: "status" });

  view.keyInput = el("input", { type: "password", id: "playground-key", name: "api-key",
    autocomplete: "off" });
  view.keyInput.spellcheck = false;
  view.keyHint = el("p", { class: "hint" });
  view.saveKey = el("button", { type: "submit", id: "playground-save-key",
    class: "btn small primary", text: "Save key" });
  view.forgetKey = button("Forget the saved key", { id: "playground-forget-key",
    class: "btn small subtle" });
  const keyField = el("div", { class: "field" },
    el("label", { for: "playground-key", class: "field-label", text: "API key" }),
    view.keyInput, view.keyHint);
  view.keyForm = el("form", { id: "playground-key-form", class: "playground-form" }, keyField,
    el("div", { class: "button-row" }, view.saveKey, view.forgetKey));
  view.keyForm.noValidate = true;
  view.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = view.keyInput.value.trim();
    view.keyInput.value = "";
    if (!key) {
      showFieldErrors(view.keyForm, [{ wrap: view.keyInput.parentElement,
        control: view.keyInput, message: "Paste a key to save." }]);
      return;
    }
    saveProvider(view, { key }, view.keyForm, view.keyInput, view.saveKey);
  });
  view.forgetKey.addEventListener("click", () =>
    saveProvider(view, { key: "" }, view.keyForm, view.keyInput, view.forgetKey));
  clearErrorsOnInput(view.keyForm);

  view.baseUrl = el("input", { type: "url", id: "playground-base-url", name: "baseUrl",
    autocomplete: "off" });
  view.baseUrl.spellcheck = false;
  view.baseUrlMark = el("span", { class: "required", title: "required", text: "*" });
  view.baseUrlHint = el("p", { class: "hint" });
  view.saveBaseUrl = el("button", { type: "submit", id: "playground-save-base-url",
    class: "btn small", text: "Save base URL" });
  view.resetBaseUrl = button("Reset the saved base URL", { id: "playground-reset-base-url",
    class: "btn small subtle", hidden: true });
  view.resetBaseUrl.addEventListener("click", () => saveProvider(view, { baseUrl: "" },
    view.baseUrlForm, view.baseUrl, view.resetBaseUrl));
  const baseUrlField = el("div", { class: "field" },
    el("label", { for: "playground-base-url", class: "field-label" }, "Base URL",
      view.baseUrlMark),
    view.baseUrl, view.baseUrlHint);
  view.baseUrlForm = el("form", { id: "playground-base-url-form", class: "playground-form" },
    baseUrlField, el("div", { class: "button-row" }, view.saveBaseUrl, view.resetBaseUrl));
  view.baseUrlForm.noValidate = true;
  view.baseUrlForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const baseUrl = view.baseUrl.value.trim();
    if (baseUrl && !/^https?:\/\/[^/\s]/i.test(baseUrl)) {
      showFieldErrors(view.baseUrlForm, [{ wrap: view.baseUrl.parentElement,
        control: view.baseUrl, message: "An http:// or https:// address." }]);
      return;
    }
    saveProvider(view, { baseUrl }, view.baseUrlForm, view.baseUrl, view.saveBaseUrl);
  });
  clearErrorsOnInput(view.baseUrlForm);

  view.model = el("input", { type: "text", id: "playground-model", name: "model",
    autocomplete: "off" });
  view.model.spellcheck = false;
  // An input's `list` is a read-only property: it is set as an attribute.
  view.model.setAttribute("list", "playground-models");
  view.modelList = el("datalist", { id: "playground-models" });
  view.modelNote = el("p", { class: "hint playground-models-note", "aria-live": "polite" });
  const listModelsButton = button("List models", { id: "playground-list-models",
    class: "btn small subtle" });
  listModelsButton.addEventListener("click", () => listModels(view));
  view.model.addEventListener("input", () => {
    if (!view.provider) return;
    settings.models[view.provider.id] = view.model.value.trim();
    savePlaygroundSettings(settings);
  });

  view.system = el("textarea", { id: "playground-system", name: "system", rows: 3,
    placeholder: "You are a helpful assistant…" });
  view.system.value = typeof settings.system === "string" ? settings.system : "";
  const saveSystem = () => {
    settings.system = view.system.value;
    savePlaygroundSettings(settings);
  };
  view.system.addEventListener("input", debounce(saveSystem, 300));
  view.system.addEventListener("change", saveSystem);

  const documentsAvailable = isObject(info) && info.documents === true;
  view.documents = el("input", { type: "checkbox", id: "playground-documents",
    name: "documents", disabled: !documentsAvailable });
  view.documents.checked = documentsAvailable && settings.documents === true;
  view.documents.addEventListener("change", () => {
    settings.documents = view.documents.checked;
    savePlaygroundSettings(settings);
  });
  view.sampling = el("input", { type: "checkbox", id: "playground-sampling", name: "sampling" });
  view.sampling.checked = settings.sampling !== "person";
  view.sampling.addEventListener("change", () => {
    settings.sampling = view.sampling.checked ? "model" : "person";
    savePlaygroundSettings(settings);
  });

  const limit = maxStepsLimit(view);
  view.maxSteps = el("input", { type: "number", id: "playground-max-steps", name: "maxSteps",
    min: "1", max: String(limit), step: "1", inputMode: "numeric" });
  view.maxSteps.value = String(Number.isInteger(settings.maxSteps) ? settings.maxSteps
    : defaultMaxSteps(view));
  view.maxSteps.addEventListener("change", () => {
    view.maxSteps.value = String(maxStepsOf(view));
    settings.maxSteps = maxStepsOf(view);
    savePlaygroundSettings(settings);
  });

  return el("aside", { class: "card playground-settings", "aria-label": "Playground settings" },
    el("h2", { class: "card-title", text: "Model" }),
    el("div", { class: "field" },
      el("label", { for: "playground-provider", class: "field-label", text: "Provider" }),
      view.providerSelect),
    view.providerStatus,
    view.keyForm,
    view.baseUrlForm,
    el("div", { class: "field" },
      el("label", { for: "playground-model", class: "field-label", text: "Model" }),
      view.model, view.modelList,
      el("div", { class: "playground-models-row" }, view.modelNote, listModelsButton)),
    el("div", { class: "field" },
      el("label", { for: "playground-system", class: "field-label", text: "System prompt" }),
      view.system),
    el("div", { class: "field field-check" },
      el("label", { for: "playground-documents", class: "check-label" }, view.documents,
        el("span", { text: "Use my documents" })),
      el("p", { class: "hint", text: documentsAvailable
        ? "Passages of your knowledge base that match your message are given to the model."
        : "No knowledge base is available to this proxy." })),
    el("div", { class: "field field-check" },
      el("label", { for: "playground-sampling", class: "check-label" }, view.sampling,
        el("span", { text: "Model answers servers' sampling requests" })),
      el("p", { class: "hint", text: "Off: you write the answer when a server asks for a " +
        "completion." })),
    el("div", { class: "field playground-steps" },
      el("label", { for: "playground-max-steps", class: "field-label", text: "Max steps" }),
      view.maxSteps,
      el("p", { class: "hint", text: "Model turns per message (each may call tools), 1–" +
        limit + "." })),
    toolChooser(view));
}

/** The proxy's default max steps (8 when it names none). */
function defaultMaxSteps(view) {
  const value = isObject(view.info) ? Number(view.info.maxSteps) : NaN;
  return Number.isInteger(value) && value > 0 ? value : 8;
}

/** The most steps the proxy takes (50 when it names none). */
function maxStepsLimit(view) {
  const value = isObject(view.info) ? Number(view.info.maxStepsLimit) : NaN;
  return Number.isInteger(value) && value > 0 ? value : 50;
}

/** The max steps typed, kept within 1 and the proxy's limit (the default when not a number). */
function maxStepsOf(view) {
  const value = Number.parseInt(view.maxSteps.value, 10);
  if (!Number.isFinite(value) || value < 1) return defaultMaxSteps(view);
  return Math.min(value, maxStepsLimit(view));
}

/** Shows a provider: why it is not ready, its key and base URL, its model; lists its models. */
function selectProvider(view, row) {
  view.provider = row;
  view.settings.provider = row.id;
  savePlaygroundSettings(view.settings);
  showProvider(view);
  const stored = view.settings.models[row.id];
  view.model.value = typeof stored === "string" && stored ? stored
    : String(row.defaultModel || "");
  view.model.placeholder = String(row.defaultModel || "");
  updateToolCount(view);
  listModels(view);
}

/** Fills the provider's status, key and base URL parts from its row. */
function showProvider(view) {
  const row = view.provider;
  const title = String(row.title || row.id);
  const key = isObject(row.key) ? row.key : { from: "none" };
  const compatible = row.id === "compatible";
  for (const option of view.providerSelect.options) {
    const entry = view.providers.find((candidate) => candidate.id === option.value);
    if (entry) option.textContent = providerLabel(entry);
  }
  const keyVariables = (Array.isArray(row.keyVariables) ? row.keyVariables : [])
    .filter((name) => typeof name === "string" && name).join(" / ");
  let why = "";
  if (row.ready !== true) {
    if (compatible && !row.baseUrl) why = "Give the server's base URL below.";
    else if (row.needsKey === true && key.from === "none") {
      why = "No API key: save one below, or set " +
        (keyVariables || "the provider's key variable") + " where the proxy runs.";
    } else why = "Not ready yet.";
  }
  setChildren(view.providerStatus,
    row.ready === true ? badge("ready", "ok") : badge("not set up", "warn"),
    why ? el("span", { class: "small", text: " " + why }) : null);
  if (key.from === "saved") {
    view.keyHint.textContent = "A key is saved on the proxy (never shown). Paste another to " +
      "replace it.";
  } else if (key.from === "environment") {
    view.keyHint.textContent = "From " + String(key.variable || "the environment") +
      ". A key saved here is used instead.";
  } else if (row.needsKey === true) {
    view.keyHint.textContent = "Saved on the proxy for " + title + "; never shown again." +
      (keyVariables ? " Or set " + keyVariables + " where the proxy runs." : "");
  } else {
    view.keyHint.textContent = "Optional: a local server may need none." +
      (keyVariables ? " Or set " + keyVariables + "." : "");
  }
  view.keyInput.placeholder = key.from === "saved" ? "•••••••• (saved)" : "";
  view.forgetKey.hidden = key.from !== "saved";
  view.baseUrl.value = typeof row.baseUrl === "string" ? row.baseUrl : "";
  view.baseUrl.placeholder = compatible ? "http://127.0.0.1:11434/v1" : "";
  view.baseUrl.required = compatible;
  if (compatible) view.baseUrl.setAttribute("aria-required", "true");
  else view.baseUrl.removeAttribute("aria-required");
  view.baseUrlMark.hidden = !compatible;
  const variable = row.baseUrlVariable ? String(row.baseUrlVariable) : "";
  const from = typeof row.baseUrlFrom === "string" ? row.baseUrlFrom : "";
  view.baseUrlHint.dataset.from = from;
  view.baseUrlHint.textContent = baseUrlSource(from, variable, title, compatible);
  view.resetBaseUrl.hidden = from !== "saved";
  clearFieldErrors(view.keyForm);
  clearFieldErrors(view.baseUrlForm);
}

/** Where a provider's base URL comes from, and how to change it. */
function baseUrlSource(from, variable, title, compatible) {
  const orVariable = variable ? " (or set " + variable + ")" : "";
  switch (from) {
    case "saved":
      return "Saved on the proxy. Reset it to use " +
        (variable ? variable + " if set, else " : "") + (compatible ? "none." : title + "'s own.");
    case "environment":
      return "From " + (variable || "the environment") + ". A base URL saved here is used " +
        "instead.";
    case "default":
      return title + "'s own. Save another" + orVariable + " to reach a different server.";
    case "none":
      return (compatible ? COMPATIBLE_HINT + ". " : "") + "None yet: save one" + orVariable + ".";
    default:
      return compatible ? COMPATIBLE_HINT + "." : "";
  }
}

/**
 * Saves a key or base URL for the provider on screen (PUT); the row the proxy answers with
 * replaces the page's. The key is never kept: its input is emptied before the request.
 */
async function saveProvider(view, body, form, control, trigger) {
  const row = view.provider;
  trigger.disabled = true;
  clearFieldErrors(form);
  try {
    const answer = await view.ctx.api("/api/v1/playground/providers/" + encodeSegment(row.id),
      { method: "PUT", body });
    const updated = isObject(answer) && answer.id === row.id ? answer : row;
    view.providers = view.providers.map((entry) => (entry.id === row.id ? updated : entry));
    if (view.provider && view.provider.id === row.id) {
      view.provider = updated;
      showProvider(view);
      updateToolCount(view);
      listModels(view);
    }
    const title = String(updated.title || updated.id);
    if (body.key !== undefined) notify(body.key ? "Saved the key for " + title + "."
      : "Forgot the saved key for " + title + ".");
    else if (body.baseUrl) notify("Saved the base URL for " + title + ".");
    else {
      notify("The saved base URL for " + title + " is reset: " + (updated.baseUrlFrom ===
        "environment" ? "it comes from " + String(updated.baseUrlVariable || "the environment")
        : updated.baseUrlFrom === "default" ? "it is " + title + "'s own" : "there is none") +
        ".");
    }
  } catch (error) {
    if (error.name === "AbortError") return;
    if (error.status === 401) {
      report(error);
      return;
    }
    showFieldErrors(form, [{ wrap: control.parentElement, control, message: error.message }]);
  } finally {
    trigger.disabled = false;
  }
}

/** Fills the model suggestions from the provider; a failure is told, and blocks nothing. */
async function listModels(view) {
  const row = view.provider;
  view.modelRequest += 1;
  const request = view.modelRequest;
  view.modelList.replaceChildren();
  view.modelNote.classList.remove("error-text");
  if (row.ready !== true) {
    view.modelNote.textContent = "";
    return;
  }
  view.modelNote.textContent = "Listing the models…";
  let models;
  try {
    const data = await view.ctx.api("/api/v1/playground/providers/" + encodeSegment(row.id) +
      "/models");
    models = isObject(data) && Array.isArray(data.models) ? data.models.map(String) : [];
  } catch (error) {
    if (error.name === "AbortError" || request !== view.modelRequest) return;
    const provider = isObject(error.data) && isObject(error.data.provider)
      ? error.data.provider : null;
    if (error.status === 401 && !provider) {
      report(error);
      return;
    }
    view.modelNote.classList.add("error-text");
    view.modelNote.textContent = "Could not list the models: " + (provider
      ? providerFailure(String(row.title || row.id), provider) : error.message);
    return;
  }
  if (request !== view.modelRequest) return;
  setChildren(view.modelList, models.map((model) => el("option", { value: model })));
  view.modelNote.textContent = models.length
    ? models.length + (models.length === 1 ? " model" : " models") + " to choose from."
    : "The provider listed no models: type one.";
}

/* The tool chooser: checkboxes by server, a filter, all or none, and the count. */

function toolChooser(view) {
  const tools = (isObject(view.info) && Array.isArray(view.info.tools) ? view.info.tools : [])
    .filter((tool) => isObject(tool) && typeof tool.name === "string");
  const off = new Set(Array.isArray(view.settings.toolsOff)
    ? view.settings.toolsOff.map(String) : []);
  const byServer = new Map();
  for (const tool of tools) {
    const server = String(tool.server || "other");
    if (!byServer.has(server)) byServer.set(server, []);
    byServer.get(server).push(tool);
  }
  view.toolBoxes = [];
  view.toolGroups = [];
  const groups = Array.from(byServer.keys()).sort().map((server) => {
    const entries = byServer.get(server).slice().sort((a, b) => a.name.localeCompare(b.name));
    const groupBox = el("input", { type: "checkbox", id: nextFieldId(),
      class: "playground-group-box", "aria-label": "All tools of " + server });
    const items = entries.map((tool) => {
      const box = el("input", { type: "checkbox", id: nextFieldId(), name: "tool",
        value: tool.name });
      box.checked = !off.has(tool.name);
      view.toolBoxes.push(box);
      return toolChoice(tool, server, box);
    });
    const boxes = items.map((item) => item.querySelector("input"));
    const group = el("div", { class: "playground-tool-group", "data-server": server },
      el("div", { class: "playground-tool-group-head" },
        el("label", { for: groupBox.id, class: "check-label" }, groupBox,
          el("strong", { text: server })),
        el("span", { class: "muted small playground-group-count" })),
      el("ul", { class: "playground-tool-items" }, items));
    groupBox.addEventListener("change", () => {
      for (const box of boxes) {
        if (!box.closest(".playground-tool").hidden) box.checked = groupBox.checked;
      }
      toolsChanged(view);
    });
    view.toolGroups.push({ group, groupBox, boxes });
    return group;
  });
  view.toolFilter = el("input", { type: "search", id: "playground-tool-filter",
    class: "search", placeholder: "Filter tools", autocomplete: "off",
    "aria-label": "Filter tools" });
  view.toolFilter.addEventListener("input", () => filterTools(view));
  const all = button("Select all", { id: "playground-tools-all", class: "btn small" });
  const none = button("Select none", { id: "playground-tools-none", class: "btn small" });
  all.addEventListener("click", () => checkShownTools(view, true));
  none.addEventListener("click", () => checkShownTools(view, false));
  view.toolCount = el("p", { class: "playground-tool-count muted small", "aria-live": "polite" });
  view.toolWarning = el("p", { class: "playground-tool-warning", role: "status", hidden: true });
  const list = el("div", { class: "playground-tool-list" },
    groups.length ? groups : muted("No tools: the model can only talk."));
  list.addEventListener("change", (event) => {
    if (event.target.name === "tool") toolsChanged(view);
  });
  const fieldset = el("fieldset", { class: "playground-tools" },
    el("legend", { text: "Tools" }),
    view.toolFilter,
    el("div", { class: "playground-tool-actions" }, all, none, view.toolCount),
    view.toolWarning,
    list);
  return fieldset;
}

/** One tool of the chooser: its checkbox, name and the first line of its description. */
function toolChoice(tool, server, box) {
  const description = typeof tool.description === "string" ? firstLine(tool.description) : "";
  const label = el("label", { for: box.id, class: "check-label", title: description || null },
    box, el("span", { class: "playground-tool-text" },
      el("code", { class: "playground-tool-name", text: tool.name }),
      description ? el("span", { class: "playground-tool-desc", text: description }) : null));
  return el("li", { class: "playground-tool", "data-name": tool.name,
    "data-search": [tool.name, server, tool.description || ""].join(" ").toLowerCase() },
    label);
}

/** Checks or unchecks the tools the filter shows (every tool when there is no filter). */
function checkShownTools(view, on) {
  for (const box of view.toolBoxes) {
    if (!box.closest(".playground-tool").hidden) box.checked = on;
  }
  toolsChanged(view);
}

/** Shows the tools whose name, server or description has every word of the filter. */
function filterTools(view) {
  const words = view.toolFilter.value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const { group, boxes } of view.toolGroups) {
    let shown = 0;
    for (const box of boxes) {
      const item = box.closest(".playground-tool");
      item.hidden = !words.every((word) => item.dataset.search.includes(word));
      if (!item.hidden) shown += 1;
    }
    group.hidden = shown === 0;
  }
  updateToolCount(view);
}

/** Keeps the tools left out (so tools added later start chosen) and recounts. */
function toolsChanged(view) {
  view.settings.toolsOff = view.toolBoxes.filter((box) => !box.checked).map((box) => box.value);
  savePlaygroundSettings(view.settings);
  updateToolCount(view);
}

/** The count of chosen tools, each server's state, and whether the provider takes that many. */
function updateToolCount(view) {
  if (!view.toolBoxes) return;
  const total = view.toolBoxes.length;
  const chosen = view.toolBoxes.filter((box) => box.checked).length;
  view.toolCount.textContent = chosen + " of " + total + (total === 1 ? " tool" : " tools");
  for (const { group, groupBox, boxes } of view.toolGroups) {
    const on = boxes.filter((box) => box.checked).length;
    groupBox.checked = on === boxes.length;
    groupBox.indeterminate = on > 0 && on < boxes.length;
    group.querySelector(".playground-group-count").textContent = on + "/" + boxes.length;
  }
  const row = view.provider;
  const max = row && typeof row.maxTools === "number" ? row.maxTools : null;
  const over = max !== null && chosen > max;
  view.toolWarning.hidden = !over;
  view.toolWarning.textContent = over ? String(row.title || row.id) + " accepts at most " +
    max + " tools: choose, or leave all selected and the most relevant are offered." : "";
}

/** The tools to offer: null for all of them (the proxy then picks when there are too many). */
function selectedTools(view) {
  const chosen = view.toolBoxes.filter((box) => box.checked).map((box) => box.value);
  return chosen.length === view.toolBoxes.length ? null : chosen;
}

/* The conversation: transcript and composer. */

/** The chat pane: usage, New chat, the transcript and the composer. */
function playgroundChat(view) {
  view.transcript = el("div", { id: "playground-transcript", class: "playground-transcript",
    role: "log", "aria-live": "polite", "aria-label": "Conversation", tabIndex: 0 });
  view.usage = el("span", { class: "playground-usage", title: "Tokens used in this chat" });
  view.input = el("textarea", { id: "playground-input", name: "message", rows: 3,
    placeholder: "Message the model — Enter sends, Shift+Enter starts a new line" });
  view.send = el("button", { type: "submit", id: "playground-send", class: "btn primary",
    text: "Send" });
  view.stop = button("Stop", { id: "playground-stop", class: "btn danger", hidden: true });
  view.newChat = button("New chat", { id: "playground-new", class: "btn small" });
  const composer = el("form", { id: "playground-composer", class: "playground-composer" },
    el("label", { for: "playground-input", class: "visually-hidden", text: "Message" }),
    view.input,
    el("div", { class: "playground-composer-actions" }, view.send, view.stop));
  composer.noValidate = true;
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage(view);
  });
  view.input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    sendMessage(view);
  });
  view.stop.addEventListener("click", () => {
    if (view.turn) stopTurn(view.turn, false);
  });
  view.newChat.addEventListener("click", () => newChat(view));
  showUsage(view);
  return el("section", { class: "card playground-chat", "aria-label": "Chat" },
    el("div", { class: "playground-chat-head" },
      el("h2", { text: "Chat" }), view.usage, view.newChat),
    view.transcript, composer);
}

/** What an empty transcript says. */
function emptyTranscript() {
  return el("p", { class: "playground-empty muted", text: "Ask something. The model answers " +
    "and calls the tools chosen on the left when it needs them." });
}

/** Runs `change` on the transcript, then keeps it scrolled to the end if it was there. */
function followTranscript(view, change) {
  const box = view.transcript;
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  change();
  if (atEnd) box.scrollTop = box.scrollHeight;
}

/** Adds an item at the end of the transcript; the model's next text starts a new message. */
function addToTranscript(view, node) {
  followTranscript(view, () => {
    for (const empty of view.transcript.querySelectorAll(":scope > .playground-empty")) {
      empty.remove();
    }
    view.transcript.append(node);
  });
  view.textNode = null;
  return node;
}

/**
 * A message bubble ("You" or "Model" is drawn by the stylesheet); the text is kept as it is
 * (newlines shown), never read as markup.
 */
function messageBubble(role, text) {
  const node = document.createTextNode(text);
  const bubble = el("div", { class: "playground-message " + role }, node);
  return { bubble, node };
}

/** Appends a piece of the model's streamed answer. */
function appendAnswer(view, text) {
  if (!text) return;
  if (!view.textNode) {
    const { bubble, node } = messageBubble("assistant", "");
    addToTranscript(view, bubble);
    view.textNode = node;
  }
  followTranscript(view, () => view.textNode.appendData(text));
}

/** A note in the transcript (`kind`: "warn", "info" and extra classes). */
function noticeItem(kind, ...children) {
  return el("div", { class: "playground-notice" + (kind ? " " + kind : ""), role: "note" },
    children);
}

/** The tokens this chat used, summed over its model steps. */
function showUsage(view) {
  const usage = view.memory.usage;
  view.usage.textContent = "Tokens: " + usage.input.toLocaleString("en-US") + " in · " +
    usage.output.toLocaleString("en-US") + " out";
}

/** A tool call's card: name, state and duration; arguments, progress and result inside. */
function toolCallCard(call, running) {
  const name = String(call.name || "tool");
  const status = badge(running ? "running" : "called", running ? "info" : "muted");
  status.classList.add("playground-tool-status");
  const duration = el("span", { class: "playground-duration muted small" });
  const progressBar = el("progress", { max: 1 });
  const progressText = el("span", { class: "progress-text" });
  const progress = el("div", { class: "progress", hidden: true }, progressBar, progressText);
  const questions = el("div", { class: "playground-tool-questions" });
  const result = el("div", { class: "result", "aria-live": "polite" },
    muted(running ? "Running…" : "No result."));
  const summary = el("summary", {},
    el("span", { class: "playground-tool-label", text: "Tool" }),
    el("code", { class: "playground-tool-name", text: name }), status, duration);
  const body = el("div", { class: "playground-tool-body" },
    el("h3", { text: "Arguments" }),
    el("pre", { class: "code playground-arguments", text: argumentsText(call.arguments) }),
    progress,
    questions,
    el("h3", { text: "Result" }),
    result);
  const element = el("details", { class: "playground-tool-call", "data-name": name,
    "data-id": String(call.id || ""), open: true }, summary, body);
  element.classList.toggle("running", running);
  return { element, status, duration, progress, progressBar, progressText, questions,
    result };
}

/** A tool call's arguments as text: JSON pretty-printed (arguments that are not JSON as sent). */
function argumentsText(args) {
  if (args === undefined || args === null) return "{}";
  return typeof args === "string" ? prettyText(args) : pretty(args);
}

/** A tool card's state badge ("running", "done", "error", ...), its class following. */
function setToolState(card, state, kind) {
  card.status.textContent = state;
  card.status.className = "badge badge-" + kind + " playground-tool-status";
  card.element.classList.toggle("running", state === "running");
  card.element.classList.toggle("failed", kind === "danger");
}

/** Shows a tool's result (the MCP CallToolResult) on its card. */
function fillToolResult(card, data) {
  const result = data.result;
  const failed = data.isError === true || (isObject(result) && result.isError === true);
  setToolState(card, failed ? "error" : "done", failed ? "danger" : "ok");
  card.duration.textContent = typeof data.durationMs === "number"
    ? formatMs(data.durationMs) : "";
  card.progress.hidden = true;
  if (result === undefined || result === null) {
    setChildren(card.result, el("div", { class: "error", text: typeof data.error === "string"
      ? data.error : "No result." }));
  } else setChildren(card.result, ...resultParts(null, result));
}

/** Draws the conversation kept from before (the page was left and opened again). */
function restoreConversation(view) {
  const messages = Array.isArray(view.memory.messages) ? view.memory.messages : [];
  setChildren(view.transcript, messages.length ? null : emptyTranscript());
  const cards = new Map();
  for (const message of messages.filter(isObject)) {
    const role = message.role === "assistant" ? "assistant" : "user";
    const parts = Array.isArray(message.content) ? message.content.filter(isObject) : [];
    for (const part of parts) {
      if (part.type === "text" && typeof part.text === "string") {
        addToTranscript(view, messageBubble(role, part.text).bubble);
      } else if (part.type === "tool_call") {
        const toolCard = toolCallCard(part, false);
        cards.set(String(part.id), toolCard);
        addToTranscript(view, toolCard.element);
      } else if (part.type === "tool_result") {
        let toolCard = cards.get(String(part.id));
        if (!toolCard) {
          toolCard = toolCallCard({ id: part.id, name: part.name }, false);
          addToTranscript(view, toolCard.element);
        }
        const failed = part.isError === true;
        setToolState(toolCard, failed ? "error" : "done", failed ? "danger" : "ok");
        const text = textBlock(typeof part.content === "string" ? part.content
          : pretty(part.content));
        setChildren(toolCard.result, failed ? el("div", { class: "error" }, text) : text);
      }
    }
  }
  view.transcript.scrollTop = view.transcript.scrollHeight;
}

/** Clears the conversation (stopping a turn in progress, whose end is then not shown). */
function newChat(view) {
  if (view.turn) {
    stopTurn(view.turn, true);
    view.turn = null;
    setStreaming(view, false);
  }
  view.memory.messages = [];
  view.memory.usage = { input: 0, output: 0 };
  view.textNode = null;
  setChildren(view.transcript, emptyTranscript());
  showUsage(view);
  view.input.focus();
}

/** Send or Stop, and the transcript marked busy, while a turn streams. */
function setStreaming(view, on) {
  view.send.disabled = on;
  view.stop.hidden = !on;
  view.stop.disabled = !on;
  view.transcript.setAttribute("aria-busy", on ? "true" : "false");
}

/** What the proxy is asked for this turn: the conversation so far and the new message. */
function chatRequest(view, text) {
  const row = view.provider;
  const system = view.system.value.trim() ? view.system.value : null;
  return {
    provider: row.id,
    model: view.model.value.trim() || String(row.defaultModel || ""),
    system,
    messages: view.memory.messages.concat([{ role: "user",
      content: [{ type: "text", text }] }]),
    tools: selectedTools(view),
    documents: !view.documents.disabled && view.documents.checked,
    maxSteps: maxStepsOf(view),
    sampling: view.sampling.checked ? "model" : "person",
  };
}

/** Sends the person's message and follows the turn's events until it ends. */
function sendMessage(view) {
  if (view.turn || !view.provider) return;
  const text = view.input.value;
  if (!text.trim()) {
    view.input.focus();
    return;
  }
  const request = chatRequest(view, text);
  view.input.value = "";
  for (const node of view.transcript.querySelectorAll(".playground-done")) {
    node.classList.remove("playground-done");
  }
  addToTranscript(view, messageBubble("user", text).bubble);
  const turn = { view, text, provider: view.provider, controller: new AbortController(),
    chatId: null, cards: new Map(), ended: false, stopping: false, stopTimer: 0, queue: [],
    asking: null, slots: [] };
  view.turn = turn;
  setStreaming(view, true);
  runTurn(turn, request)
    .catch((error) => turnFailed(turn, error))
    .finally(() => finishTurn(turn));
}

/** Posts the turn and reads its event stream (an answer without one is an error). */
async function runTurn(turn, request) {
  const response = await fetch("/api/v1/playground/chat", {
    method: "POST",
    headers: apiHeaders(true, "text/event-stream"),
    body: JSON.stringify(request),
    signal: turn.controller.signal,
    credentials: "same-origin",
  });
  const type = response.headers.get("Content-Type") || "";
  if (response.ok && type.includes("text/event-stream") && response.body) {
    await readEvents(response.body, (event) => onChatEvent(turn, event));
    return;
  }
  const data = await readBody(response);
  const provider = isObject(data) && isObject(data.provider) ? data.provider : null;
  if (response.status === 401 && !provider) {
    turn.ended = true;
    report(new ApiError(401, errorMessage(401, data), data));
    return;
  }
  chatError(turn, { status: response.status, error: response.ok
    ? "The proxy answered without an event stream." : errorMessage(0, data), provider });
}

/** The request itself failed (not a stopped turn). */
function turnFailed(turn, error) {
  if (turn.ended || (error && error.name === "AbortError")) return;
  chatError(turn, { status: 0, error: "The proxy did not answer (" +
    (error && error.message) + ")." });
}

/**
 * Stops a turn: asks the proxy to stop the chat, whose stream then ends with what was kept;
 * reading stops anyway after a few seconds, or at once when `now` (the page is going).
 */
function stopTurn(turn, now) {
  const abort = () => turn.controller.abort();
  if (turn.stopping) {
    if (now) abort();
    return;
  }
  turn.stopping = true;
  turn.view.stop.disabled = true;
  if (!turn.chatId) {
    abort();
    return;
  }
  api("/api/v1/playground/chats/" + encodeSegment(turn.chatId), { method: "DELETE" })
    .catch((error) => {
      if (error.status !== 404) report(error);
      abort();
    });
  if (now) abort();
  else turn.stopTimer = setTimeout(abort, 3000);
}

/**
 * Ends a turn on the page: questions left unanswered and tools still running are marked, and
 * a turn that ended without `done` or `error` says so (its message is not in the conversation).
 */
function finishTurn(turn) {
  const view = turn.view;
  clearTimeout(turn.stopTimer);
  if (view.turn !== turn) return;
  view.turn = null;
  setStreaming(view, false);
  turn.queue = [];
  turn.asking = null;
  for (const slot of turn.slots) {
    if (slot.querySelector("form")) {
      setChildren(slot, muted("Not answered: the turn ended."));
    }
  }
  for (const toolCard of turn.cards.values()) {
    if (toolCard.element.classList.contains("running")) {
      setToolState(toolCard, "not finished", "warn");
      setChildren(toolCard.result, muted("The turn ended before the tool answered."));
    }
  }
  if (!turn.ended) {
    addToTranscript(view, noticeItem("warn", el("p", { text: turn.stopping
      ? "Stopped. This message was not answered and is left out of the conversation."
      : "The answer ended early: this message is left out of the conversation." })));
    turnEnd(view, turn.stopping ? "cancelled" : "lost", null);
  }
}

/** Marks the end of a turn: `.playground-done` is on the last turn's mark once it ended. */
function turnEnd(view, stop, steps) {
  const stepText = Number.isInteger(steps) && steps > 0
    ? steps + (steps === 1 ? " step" : " steps") : "";
  const text = stop === "end_turn" ? "Done" + (stepText ? " · " + stepText : "")
    : stop === "error" ? "Ended with an error" : "Ended" + (stepText ? " · " + stepText : "");
  addToTranscript(view, el("p", { class: "playground-turn-end playground-done",
    "data-stop": stop, "data-steps": Number.isInteger(steps) ? String(steps) : null, text }));
}

/** One event of the turn's stream. */
function onChatEvent(turn, event) {
  const view = turn.view;
  if (view.turn !== turn) return;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch (error) {
    data = event.data;
  }
  const fields = isObject(data) ? data : {};
  switch (event.event) {
    case "chat":
      turn.chatId = typeof fields.id === "string" ? fields.id : null;
      break;
    case "tools": toolsNote(turn, fields); break;
    case "documents": documentsNote(view, fields); break;
    case "text":
      appendAnswer(view, typeof fields.text === "string" ? fields.text : "");
      break;
    case "tool_call": {
      const toolCard = toolCallCard(fields, true);
      turn.cards.set(String(fields.id), toolCard);
      addToTranscript(view, toolCard.element);
      break;
    }
    case "progress": {
      // Progress names the tool call it is about as `call`.
      const toolCard = turn.cards.get(String(fields.call !== undefined ? fields.call
        : fields.id));
      if (toolCard) followTranscript(view, () => showProgress(toolCard, fields));
      break;
    }
    case "tool_result": {
      let toolCard = turn.cards.get(String(fields.id));
      if (!toolCard) {
        toolCard = toolCallCard(fields, false);
        turn.cards.set(String(fields.id), toolCard);
        addToTranscript(view, toolCard.element);
      }
      followTranscript(view, () => fillToolResult(toolCard, fields));
      break;
    }
    case "elicitation":
    case "sampling":
      askInChat(turn, Object.assign({}, fields, { kind: event.event }));
      break;
    case "sampled": sampledNote(turn, fields); break;
    case "usage": {
      const usage = view.memory.usage;
      usage.input += Number.isFinite(fields.input_tokens) ? fields.input_tokens : 0;
      usage.output += Number.isFinite(fields.output_tokens) ? fields.output_tokens : 0;
      showUsage(view);
      break;
    }
    case "done": chatDone(turn, fields); break;
    case "error": chatError(turn, isObject(data) ? data : { error: String(data) }); break;
    default: break;
  }
}

/** Which tools were offered: the ones left out and why, and schema parts a provider drops. */
function toolsNote(turn, data) {
  const view = turn.view;
  const offered = Array.isArray(data.offered) ? data.offered.map(String) : [];
  const omitted = Array.isArray(data.omitted) ? data.omitted.map(String) : [];
  const lost = Array.isArray(data.lost) ? data.lost.filter(isObject) : [];
  const title = String(turn.provider.title || turn.provider.id);
  if (omitted.length || data.reason) {
    addToTranscript(view, noticeItem("warn playground-omitted",
      el("p", { text: typeof data.reason === "string" && data.reason ? data.reason
        : omitted.length + " chosen tools were not offered." }),
      omitted.length ? el("details", {}, el("summary", { text: "Not offered (" +
        omitted.length + ")" }), el("p", { class: "mono small playground-names",
        text: omitted.join(", ") })) : null));
  } else if (offered.length) {
    addToTranscript(view, el("p", { class: "playground-meta muted small", text: "Offered " +
      offered.length + (offered.length === 1 ? " tool." : " tools.") }));
  }
  if (lost.length) {
    addToTranscript(view, noticeItem("info playground-lost",
      el("p", { text: "Parts of some tools' input schemas were dropped: " + title +
        " does not take them." }),
      el("ul", { class: "small" }, lost.map((entry) => el("li", {},
        el("code", { text: String(entry.tool) }), ": ",
        (Array.isArray(entry.lost) ? entry.lost.map(String) : []).join("; "))))));
  }
}

/** The documents of the knowledge base given to the model, linked to the Documents page. */
function documentsNote(view, data) {
  const sources = Array.isArray(data.sources) ? data.sources.filter(isObject) : [];
  if (!sources.length) return;
  addToTranscript(view, noticeItem("info playground-documents-used",
    el("p", { text: "Used " + sources.length + (sources.length === 1 ? " document" :
      " documents") + " from your knowledge base:" }),
    el("ul", { class: "small" }, sources.map((source) => {
      const title = String(source.title || source.uuid || "(untitled)");
      return el("li", {}, typeof source.uuid === "string" && source.uuid
        ? el("a", { href: "#/documents/" + encodeURIComponent(source.uuid), text: title })
        : title);
    }))));
}

/**
 * A server's sampling request the model answered: in the card of the tool running (tools run
 * one at a time; the server asked during its call), else at the end of the transcript.
 */
function sampledNote(turn, data) {
  const note = el("div", { class: "playground-sampled", role: "note" },
    el("p", { class: "small" }, el("strong", { text: "A server asked the model for a " +
      "completion" }), data.model ? " · " + String(data.model) : null),
    el("div", { class: "playground-sampled-text",
      text: typeof data.text === "string" ? data.text : pretty(data.text) }));
  const running = Array.from(turn.cards.values())
    .filter((toolCard) => toolCard.element.classList.contains("running"));
  const toolCard = data.call != null ? turn.cards.get(String(data.call))
    : running.length === 1 ? running[0] : null;
  if (toolCard) followTranscript(turn.view, () => toolCard.questions.append(note));
  else addToTranscript(turn.view, note);
}

/** The turn ended: the conversation is now the proxy's, and why it stopped is told. */
function chatDone(turn, data) {
  const view = turn.view;
  turn.ended = true;
  if (Array.isArray(data.messages)) view.memory.messages = data.messages;
  const stop = typeof data.stop === "string" ? data.stop : "end_turn";
  const steps = Number.isInteger(data.steps) ? data.steps : null;
  const said = stopText(stop, steps);
  if (said) addToTranscript(view, noticeItem("warn playground-stop", el("p", { text: said })));
  turnEnd(view, stop, steps);
}

/** Why a turn stopped, when it is not the model having finished its answer. */
function stopText(stop, steps) {
  switch (stop) {
    case "end_turn": return "";
    case "step_limit":
      return "Stopped after " + (steps === null ? "the most" : steps) +
        (steps === 1 ? " step" : " steps") + ": the model still wanted to call tools. Raise " +
        "Max steps, or send a message to let it go on.";
    case "max_tokens": return "The answer was cut off: the model reached its output limit.";
    case "refused": return "The model refused to answer.";
    case "cancelled": return "Stopped.";
    default: return "Stopped (" + stop + ").";
  }
}

/** An error ending the turn, with the provider's own reason when it is the provider's. */
function chatError(turn, data) {
  const view = turn.view;
  turn.ended = true;
  if (Array.isArray(data.messages)) view.memory.messages = data.messages;
  const provider = isObject(data.provider) ? data.provider : null;
  const status = typeof data.status === "number" ? data.status : 0;
  const message = typeof data.error === "string" && data.error ? data.error : "the chat failed";
  if (status === 401 && !provider) {
    report(new ApiError(401, message));
    return;
  }
  if (turn.stopping && status === 499) {
    addToTranscript(view, noticeItem("warn playground-stop", el("p", { text: "Stopped." })));
    turnEnd(view, "cancelled", null);
    return;
  }
  const title = String(turn.provider.title || turn.provider.id);
  const headline = provider ? providerFailure(title, provider)
    : "The chat failed" + (status ? " (" + status + ")" : "") + ": " + message;
  const detail = provider && (!provider.message || !message.includes(String(provider.message)))
    ? message : null;
  // A message the conversation did not keep goes back to the box, to be sent again.
  const restored = !Array.isArray(data.messages) && !view.input.value;
  if (restored) view.input.value = turn.text;
  addToTranscript(view, el("div", { class: "playground-error", role: "alert" },
    el("strong", { text: headline }),
    detail ? el("p", { class: "small", text: (status ? status + ": " : "") + detail }) : null,
    restored ? el("p", { class: "small", text: "Your message is back in the message box." })
      : null));
  turnEnd(view, "error", null);
}

/* Questions a server asks during a turn, answered in the transcript one at a time. */

/** Queues a server's question; one is shown at a time. */
function askInChat(turn, question) {
  turn.queue.push(question);
  if (!turn.asking) nextChatQuestion(turn);
}

/** Shows the next question in the transcript; once answered, the answer stays in its place. */
function nextChatQuestion(turn) {
  const question = turn.queue.shift();
  turn.asking = question || null;
  if (!question) return;
  const slot = el("div", { class: "playground-question" });
  const form = questionForm(question, async (answerForm, body) => {
    const path = turn.chatId ? "/api/v1/playground/chats/" + encodeSegment(turn.chatId) +
      "/answers/" + encodeSegment(question.id) : null;
    if (!(await postAnswer(path, answerForm, body))) return;
    setChildren(slot, answeredNote(question, body));
    if (turn.asking === question) nextChatQuestion(turn);
  });
  slot.append(form);
  turn.slots.push(slot);
  // Shown in the card of the tool call that asked, when the proxy names it.
  const toolCard = question.call !== undefined ? turn.cards.get(String(question.call)) : null;
  if (toolCard) {
    toolCard.element.open = true;
    followTranscript(turn.view, () => toolCard.questions.append(slot));
  } else addToTranscript(turn.view, slot);
  const first = form.querySelector("input, select, textarea");
  if (first) first.focus({ preventScroll: true });
  slot.scrollIntoView({ block: "nearest" });
}

/** What the person answered a server, as the transcript keeps it. */
function answeredNote(question, body) {
  if (question.kind === "sampling") {
    const text = isObject(body.content) ? String(body.content.text || "") : "";
    return el("div", { class: "playground-answered muted small" },
      el("p", { text: "A server asked for a completion; you answered:" }),
      el("div", { class: "playground-sampled-text", text }));
  }
  const said = body.action === "accept" ? "You accepted" : body.action === "decline"
    ? "You declined" : "You cancelled";
  return el("div", { class: "playground-answered muted small" },
    el("p", { text: "The server asked: " + String(question.message || "") }),
    el("p", { text: said + (body.action === "accept" ? ":" : ".") }),
    body.action === "accept" ? el("pre", { class: "code", text: pretty(body.content) }) : null);
}

/* ------------------------------------------------------------------------------------------ */
/* Prompts page                                                                                 */
/* ------------------------------------------------------------------------------------------ */

async function renderPrompts(section, ctx, open) {
  const search = el("input", { type: "search", id: "prompt-search", class: "search",
    placeholder: "Search prompts", autocomplete: "off", "aria-label": "Search prompts" });
  const count = el("p", { class: "muted small" });
  const list = el("ul", { class: "item-list" });
  const detail = el("div", { class: "detail" }, card(null, muted("Pick a prompt.")));
  const view = { list, detail, prompt: null };
  section.append(pageHeader("Prompts", "Prompts of every server, filled in with arguments."),
    el("div", { class: "split" }, el("div", { class: "card list-pane" }, search, count, list),
      detail));
  const load = async () => {
    const query = search.value.trim();
    const data = await ctx.api("/api/v1/prompts" +
      (query ? "?q=" + encodeURIComponent(query) : ""));
    if (!ctx.alive || search.value.trim() !== query) return [];
    const prompts = Array.isArray(data && data.prompts) ? data.prompts : [];
    count.textContent = prompts.length + (prompts.length === 1 ? " prompt" : " prompts");
    setChildren(list, ...prompts.map((prompt) => promptItem(view, prompt)));
    if (!prompts.length) list.append(el("li", { class: "empty" }, muted("No prompts.")));
    markSelected(list, "prompt", view.prompt && view.prompt.name);
    return prompts;
  };
  search.addEventListener("input", debounce(() => load().catch(report), 200));
  const prompts = await load();
  const wanted = prompts.find((prompt) => prompt.name === open);
  if (wanted) {
    openPrompt(view, wanted);
    scrollToSelected(list);
  }
}

function promptItem(view, prompt) {
  const name = String(prompt.name);
  const item = el("button", { type: "button", class: "item", "data-prompt": name },
    el("span", { class: "item-name", text: name }),
    prompt.title && prompt.title !== name ? el("span", { class: "item-title", text: prompt.title })
      : null,
    prompt.description ? el("span", { class: "item-desc", text: firstLine(prompt.description) })
      : null);
  item.addEventListener("click", () => openPrompt(view, prompt));
  return el("li", {}, item);
}

/** A prompt's arguments as a schema: each a string, required as the prompt says. */
function promptSchema(prompt) {
  const args = Array.isArray(prompt.arguments) ? prompt.arguments.filter(isObject) : [];
  const properties = {};
  for (const arg of args) {
    properties[String(arg.name)] = { type: "string", title: arg.title || String(arg.name),
      description: arg.description };
  }
  return { type: "object", properties,
    required: args.filter((arg) => arg.required === true).map((arg) => String(arg.name)) };
}

function openPrompt(view, prompt) {
  view.prompt = prompt;
  setSubroute("prompts", prompt.name);
  markSelected(view.list, "prompt", prompt.name);
  const schema = promptSchema(prompt);
  const fields = formFields(schema);
  const get = el("button", { type: "submit", id: "prompt-get", class: "btn primary",
    text: "Get prompt" });
  const form = el("form", { id: "prompt-form", class: "schema-form", novalidate: true },
    fields.element, Object.keys(schema.properties).length ? null
      : muted("This prompt takes no arguments."),
    el("div", { class: "form-actions" }, get));
  const result = el("div", { id: "prompt-result", class: "result" });
  clearErrorsOnInput(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const collected = fields.collect();
    showFieldErrors(form, collected.errors);
    if (!collected.errors.length) getPrompt(prompt, collected.value || {}, get, result);
  });
  setChildren(view.detail, el("div", { class: "card" },
    el("div", { class: "detail-head" }, el("h2", { text: prompt.title || prompt.name }),
      prompt.title ? el("code", { class: "qualified", text: prompt.name }) : null),
    prompt.description ? el("p", { class: "description", text: prompt.description }) : null,
    form), el("div", { class: "card" }, el("h2", { class: "card-title", text: "Messages" }),
    result));
}

async function getPrompt(prompt, args, control, result) {
  control.disabled = true;
  setChildren(result, el("p", { class: "muted", text: "Getting…" }));
  try {
    const data = await api("/api/v1/prompts/get", { method: "POST",
      body: { name: prompt.name, arguments: args } });
    const messages = isObject(data) && Array.isArray(data.messages) ? data.messages : [];
    setChildren(result,
      isObject(data) && data.description ? el("p", { class: "description",
        text: data.description }) : null,
      messages.length ? el("div", { class: "messages" }, messages.map(messageBlock))
        : muted("The prompt has no messages."));
  } catch (error) {
    setChildren(result, el("div", { class: "error", text: error.message }));
    report(error);
  } finally {
    control.disabled = false;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Resources page                                                                               */
/* ------------------------------------------------------------------------------------------ */

async function renderResources(section, ctx, open) {
  const resources = el("ul", { class: "item-list" });
  const templates = el("ul", { class: "item-list" });
  const content = el("div", { id: "resource-content", class: "result" },
    muted("Pick a resource to read it."));
  const view = { resources, templates, content };
  section.append(pageHeader("Resources", "Resources and resource templates of every server."),
    el("div", { class: "split" },
      el("div", { class: "list-pane-stack" },
        el("div", { class: "card list-pane" }, el("h2", { class: "card-title",
          text: "Resources" }), resources),
        el("div", { class: "card list-pane" }, el("h2", { class: "card-title",
          text: "Templates" }), templates)),
      el("div", { class: "detail" }, el("div", { class: "card" },
        el("h2", { class: "card-title", text: "Content" }), content))));
  const data = await ctx.api("/api/v1/resources");
  const list = isObject(data) && Array.isArray(data.resources) ? data.resources : [];
  const templateList = isObject(data) ? (data.resourceTemplates || data.templates || []) : [];
  setChildren(resources, ...list.filter(isObject).map((r) => resourceItem(view, r)));
  if (!list.length) resources.append(el("li", { class: "empty" }, muted("No resources.")));
  setChildren(templates, ...(Array.isArray(templateList) ? templateList : [])
    .filter(isObject).map((t) => templateItem(view, t)));
  if (!templates.children.length) {
    templates.append(el("li", { class: "empty" }, muted("No templates.")));
  }
  if (open) readResource(view, open);
}

function resourceItem(view, resource) {
  const uri = String(resource.uri);
  const item = el("button", { type: "button", class: "item", "data-resource": uri },
    el("span", { class: "item-name", text: resource.title || resource.name || uri }),
    el("span", { class: "item-desc mono", text: uri }),
    resource.mimeType ? el("div", { class: "badges" }, badge(String(resource.mimeType))) : null);
  item.addEventListener("click", () => readResource(view, uri));
  return el("li", {}, item);
}

/** The variables of a URI template ({id}, {+path}, {?q,r}). */
function templateVariables(template) {
  const names = [];
  for (const match of template.matchAll(/\{([^}]+)\}/g)) {
    for (const name of match[1].replace(/^[+#./;?&]/, "").split(",")) {
      const clean = name.replace(/[*]$|:\d+$/, "").trim();
      if (clean && !names.includes(clean)) names.push(clean);
    }
  }
  return names;
}

/** A URI from a template and its values (simple and reserved expansion, query forms). */
function expandTemplate(template, values) {
  return template.replace(/\{([^}]+)\}/g, (whole, body) => {
    const operator = /^[+#./;?&]/.test(body) ? body[0] : "";
    const names = body.slice(operator.length).split(",").map((n) => n.replace(/[*]$|:\d+$/, ""));
    const encode = operator === "+" || operator === "#" ? encodeURI : encodeURIComponent;
    const parts = names.filter((n) => values[n] !== undefined && values[n] !== "")
      .map((n) => (operator === "?" || operator === "&" || operator === ";"
        ? n + "=" + encodeURIComponent(values[n]) : encode(values[n])));
    if (!parts.length) return "";
    if (operator === "?" || operator === "&") return operator + parts.join("&");
    if (operator === "+" || operator === "") return parts.join(",");
    return operator + parts.join(operator === "." || operator === "/" || operator === ";"
      ? operator : ",");
  });
}

function templateItem(view, template) {
  const uriTemplate = String(template.uriTemplate || "");
  const names = templateVariables(uriTemplate);
  const inputs = names.map((name) => el("input", { type: "text", name, id: nextFieldId(),
    autocomplete: "off", placeholder: name }));
  const form = el("form", { class: "template-form", novalidate: true },
    inputs.map((input) => el("div", { class: "field inline" },
      el("label", { for: input.id, class: "field-label", text: input.name }), input)),
    el("button", { type: "submit", class: "btn small", text: "Read" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = {};
    inputs.forEach((input) => {
      values[input.name] = input.value;
    });
    readResource(view, expandTemplate(uriTemplate, values));
  });
  return el("li", { class: "template", "data-template": uriTemplate },
    el("div", { class: "item static" },
      el("span", { class: "item-name", text: template.title || template.name || uriTemplate }),
      el("span", { class: "item-desc mono", text: uriTemplate }),
      template.description ? el("span", { class: "item-desc", text: template.description })
        : null),
    form);
}

async function readResource(view, uri) {
  setSubroute("resources", uri);
  markSelected(view.resources, "resource", uri);
  setChildren(view.content, el("p", { class: "muted", text: "Reading " + uri + "…" }));
  try {
    const data = await api("/api/v1/resources/read", { method: "POST", body: { uri } });
    const contents = isObject(data) && Array.isArray(data.contents) ? data.contents : [];
    setChildren(view.content, el("h3", { class: "mono", text: uri }),
      contents.length ? contents.map(resourceBlock) : muted("The resource is empty."));
  } catch (error) {
    setChildren(view.content, el("div", { class: "error", text: error.message }));
    report(error);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Documents page                                                                               */
/* ------------------------------------------------------------------------------------------ */

const DOC_SOURCES = ["all", "upload", "ai_generated", "api"];
const DOC_CATEGORIES = ["report", "analysis", "documentation", "guide", "research", "code",
  "other"];
const DOC_VISIBILITY = ["private", "workspace", "public"];
const DOC_SORTS = [["date_desc", "Newest first"], ["date_asc", "Oldest first"],
  ["title", "Title"], ["size", "Size"]];

function selectField(label, name, options, value) {
  const select = el("select", { name, id: nextFieldId() },
    options.map((option) => {
      const [optionValue, text] = Array.isArray(option) ? option : [option, option || "any"];
      return el("option", { value: optionValue, text, selected: optionValue === value });
    }));
  return el("div", { class: "field" }, el("label", { for: select.id, class: "field-label",
    text: label }), select);
}

function inputField(label, props) {
  const input = el("input", Object.assign({ id: nextFieldId(), autocomplete: "off" }, props));
  return el("div", { class: "field" }, el("label", { for: input.id, class: "field-label",
    text: label }), input);
}

/** The filters of the library, named as GET /api/v1/documents takes them. */
function documentFilters() {
  return el("form", { id: "doc-filters", class: "filters", novalidate: true },
    inputField("Title or content", { type: "search", name: "q" }),
    selectField("Source", "source", DOC_SOURCES, "all"),
    selectField("Category", "category", [""].concat(DOC_CATEGORIES), ""),
    selectField("Visibility", "visibility", [""].concat(DOC_VISIBILITY), ""),
    inputField("Tags (comma-separated)", { type: "text", name: "tags" }),
    inputField("Model name", { type: "text", name: "modelName" }),
    inputField("Model provider", { type: "text", name: "modelProvider" }),
    inputField("Created from", { type: "date", name: "createdFrom" }),
    inputField("Created to", { type: "date", name: "createdTo" }),
    selectField("Sort", "sort", DOC_SORTS, "date_desc"),
    inputField("Per page", { type: "number", name: "limit", value: "50", min: "1",
      max: "200" }),
    el("div", { class: "filter-actions" },
      el("button", { type: "submit", class: "btn primary", text: "Apply" }),
      el("button", { type: "reset", class: "btn subtle", text: "Reset" })));
}

/** The query string for the filters: empty ones left out, dates as epoch milliseconds. */
function filterQuery(form, offset) {
  const params = new URLSearchParams();
  for (const [name, raw] of new FormData(form).entries()) {
    const value = String(raw).trim();
    if (!value || (name === "source" && value === "all")) continue;
    if (name === "createdFrom" || name === "createdTo") {
      const date = new Date(value + (name === "createdFrom" ? "T00:00:00" : "T23:59:59.999"));
      if (!Number.isNaN(date.getTime())) params.set(name, String(date.getTime()));
    } else params.set(name, value);
  }
  if (offset) params.set("offset", String(offset));
  return params;
}

async function renderDocuments(section, ctx, open) {
  const filters = documentFilters();
  const rows = el("tbody");
  const pager = el("div", { class: "pager" });
  const view = { ctx, rows, pager, filters, offset: 0, total: 0, docView: null };
  view.docView = el("div", { id: "doc-view", class: "card doc-view" },
    muted("Pick a document to see its content, versions and attribution."));
  const total = el("span");
  view.totalText = total;
  section.append(
    pageHeader("Documents", total),
    uploadCard(view),
    searchCard(view),
    el("div", { class: "split wide-left" },
      el("div", { class: "card" }, el("h2", { class: "card-title", text: "Library" }), filters,
        el("div", { class: "table-wrap" }, el("table", { class: "table documents" },
          el("thead", {}, el("tr", {}, ["Title", "Source", "Tags", "Size", "Updated"]
            .map((h) => el("th", { scope: "col", text: h })))), rows)),
        pager),
      el("div", { class: "detail" }, view.docView)));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    view.offset = 0;
    loadDocuments(view).catch(report);
  });
  filters.addEventListener("change", (event) => {
    if (event.target.tagName === "SELECT" || event.target.type === "date") {
      view.offset = 0;
      loadDocuments(view).catch(report);
    }
  });
  filters.addEventListener("reset", () => setTimeout(() => {
    view.offset = 0;
    loadDocuments(view).catch(report);
  }, 0));
  await loadDocuments(view);
  if (open) openDocument(view, open);
}

async function loadDocuments(view) {
  const params = filterQuery(view.filters, view.offset);
  const data = await view.ctx.api("/api/v1/documents?" + params.toString());
  if (!view.ctx.alive) return;
  const documents = isObject(data) && Array.isArray(data.documents) ? data.documents : [];
  view.total = isObject(data) && typeof data.total === "number" ? data.total : documents.length;
  view.totalText.textContent = view.total + (view.total === 1 ? " document" : " documents") +
    " in the library.";
  setChildren(view.rows, ...documents.filter(isObject).map((doc) => documentRow(view, doc)));
  if (!documents.length) view.rows.append(emptyRow(5, "No documents match."));
  renderPager(view, documents.length, Number(params.get("limit")) || 50);
}

function renderPager(view, shown, limit) {
  const first = shown ? view.offset + 1 : 0;
  const previous = button("Previous", { class: "btn small", disabled: view.offset <= 0 });
  const next = button("Next", { class: "btn small",
    disabled: view.offset + shown >= view.total });
  previous.addEventListener("click", () => {
    view.offset = Math.max(0, view.offset - limit);
    loadDocuments(view).catch(report);
  });
  next.addEventListener("click", () => {
    view.offset += limit;
    loadDocuments(view).catch(report);
  });
  setChildren(view.pager, el("span", { class: "muted small",
    text: first + "–" + (view.offset + shown) + " of " + view.total }), previous, next);
}

function tagList(tags) {
  const list = Array.isArray(tags) ? tags : [];
  return el("span", { class: "tags" }, list.map((tag) => el("span", { class: "tag",
    text: String(tag) })));
}

function documentRow(view, doc) {
  const id = String(doc.id);
  const row = el("tr", { "data-document": id, class: "clickable", tabIndex: 0 },
    el("td", {}, el("strong", { text: doc.title || "(untitled)" }),
      el("div", { class: "muted small", text: [doc.fileName, doc.version !== undefined
        ? "v" + doc.version : null].filter(Boolean).join(" · ") })),
    el("td", {}, badge(String(doc.source || "—"), "muted"),
      doc.model ? el("div", { class: "muted small", text: formatAuthor(doc.model) }) : null),
    el("td", {}, tagList(doc.tags)),
    el("td", { class: "num", text: formatBytes(doc.sizeBytes) }),
    el("td", { class: "nowrap" }, timeAgo(doc.updatedAt || doc.createdAt)));
  row.addEventListener("click", () => openDocument(view, id));
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter") openDocument(view, id);
  });
  return row;
}

/** Shows one document: attribution, content, versions; with a delete button. */
async function openDocument(view, id) {
  setSubroute("documents", id);
  for (const row of view.rows.querySelectorAll("[data-document]")) {
    row.classList.toggle("selected", row.dataset.document === id);
  }
  setChildren(view.docView, muted("Loading…"));
  let doc;
  try {
    doc = await view.ctx.api("/api/v1/documents/" + encodeSegment(id));
  } catch (error) {
    setChildren(view.docView, el("div", { class: "error", text: error.message }));
    report(error);
    return;
  }
  if (!isObject(doc)) return;
  const remove = button("Delete", { class: "btn danger delete" });
  remove.addEventListener("click", () => deleteDocument(view, id, doc.title, remove));
  const versions = Array.isArray(doc.versions) ? doc.versions.filter(isObject) : [];
  setChildren(view.docView,
    el("div", { class: "detail-head" }, el("h2", { text: doc.title || "(untitled)" }), remove),
    doc.description ? el("p", { class: "description", text: doc.description }) : null,
    documentFacts(doc),
    el("h3", { text: "Content" }),
    typeof doc.content === "string" ? el("pre", { class: "text doc-content",
      text: doc.content }) : muted("No content."),
    el("h3", { text: "Versions" }),
    el("ol", { class: "versions" }, versions.length ? versions.map(versionItem)
      : el("li", { class: "muted", text: "No versions recorded." })));
}

/** One version: its number, when and by whom, and why it changed. */
function versionItem(version) {
  const why = [version.changeSummary, version.updateReason].filter(Boolean).join(" — ");
  return el("li", { class: "version", "data-version": String(version.version) },
    el("div", { class: "version-head" }, el("strong", { text: "v" + version.version }),
      el("span", { text: formatTime(version.createdAt) }),
      el("span", { class: "muted", text: version.createdBy ? "by " +
        formatAuthor(version.createdBy) : "" })),
    why ? el("p", { class: "small", text: why }) : null);
}

function documentFacts(doc) {
  const facts = [
    ["Source", doc.source], ["Model", doc.model ? formatAuthor(doc.model) : null],
    ["Category", doc.category], ["Visibility", doc.visibility], ["Format", doc.format],
    ["File", doc.fileName], ["Size", formatBytes(doc.sizeBytes)],
    ["Version", doc.version !== undefined ? "v" + doc.version : null],
    ["Created", formatTime(doc.createdAt)], ["Updated", formatTime(doc.updatedAt)],
    ["Updated by", doc.updatedBy ? formatAuthor(doc.updatedBy) : null],
  ];
  return el("dl", { class: "facts attribution" },
    facts.filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([term, value]) => [el("dt", { text: term }), el("dd", { text: String(value) })]),
    Array.isArray(doc.tags) && doc.tags.length ? [el("dt", { text: "Tags" }),
      el("dd", {}, tagList(doc.tags))] : null);
}

async function deleteDocument(view, id, title, control) {
  control.disabled = true;
  try {
    await api("/api/v1/documents/" + encodeSegment(id), { method: "DELETE" });
    notify("Deleted " + (title || id) + ".");
    setChildren(view.docView, muted("The document was deleted."));
    setSubroute("documents", "");
    await loadDocuments(view);
  } catch (error) {
    control.disabled = false;
    report(error);
  }
}

/* Search, with the matches the API marks (**word**) shown as <mark>. */

function searchCard(view) {
  const input = el("input", { type: "search", id: "doc-search", class: "search",
    placeholder: "Search the library (full text)", autocomplete: "off",
    "aria-label": "Search documents" });
  const go = el("button", { type: "submit", id: "doc-search-go", class: "btn primary",
    text: "Search" });
  const results = el("div", { id: "doc-results", class: "hits" });
  const form = el("form", { class: "search-row", novalidate: true, role: "search" }, input, go);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    searchDocuments(view, input.value.trim(), results, go);
  });
  return el("section", { class: "card" }, el("h2", { class: "card-title", text: "Search" }),
    form, results);
}

/** A snippet as text and <mark> nodes: the parts between "**" pairs are the matches. */
function highlightSnippet(snippet) {
  const parts = String(snippet || "").split("**");
  // An unpaired marker is shown as it is.
  if (parts.length % 2 === 0) return [String(snippet)];
  return parts.map((part, index) => (index % 2 === 1 ? el("mark", { text: part }) : part));
}

async function searchDocuments(view, query, results, control) {
  if (!query) {
    setChildren(results, muted("Type words to search for."));
    return;
  }
  control.disabled = true;
  try {
    const params = filterQuery(view.filters, 0);
    params.delete("sort");
    params.delete("offset");
    params.set("q", query);
    const data = await view.ctx.api("/api/v1/documents/search?" + params.toString());
    const hits = isObject(data) && Array.isArray(data.hits) ? data.hits.filter(isObject) : [];
    setChildren(results, el("p", { class: "muted small", text: hits.length +
      (hits.length === 1 ? " match" : " matches") + " for “" + query + "”" }),
    ...hits.map((hit) => searchHit(view, hit)));
  } catch (error) {
    report(error);
  } finally {
    control.disabled = false;
  }
}

function searchHit(view, hit) {
  const doc = isObject(hit.document) ? hit.document : {};
  const open = el("a", { href: "#/documents/" + encodeURIComponent(String(doc.id)),
    class: "hit-title", text: doc.title || "(untitled)" });
  open.addEventListener("click", (event) => {
    event.preventDefault();
    openDocument(view, String(doc.id));
  });
  const relevance = typeof hit.relevance === "number"
    ? badge(Math.round(hit.relevance * 100) + "%", "info") : null;
  return el("div", { class: "hit", "data-document-hit": String(doc.id) },
    el("div", { class: "hit-head" }, open, relevance, tagList(doc.tags)),
    el("p", { class: "snippet" }, highlightSnippet(hit.snippet)));
}

/* Upload: files and folders; small files in one request, larger ones in chunks. */

function uploadCard(view) {
  const files = el("input", { type: "file", id: "doc-upload", multiple: true });
  const folder = el("input", { type: "file", id: "doc-upload-folder", multiple: true,
    webkitdirectory: true });
  const tags = el("input", { type: "text", name: "tags", id: nextFieldId(),
    placeholder: "e.g. notes, q3", autocomplete: "off" });
  const description = el("input", { type: "text", name: "description", id: nextFieldId(),
    autocomplete: "off" });
  const progress = el("progress", { id: "upload-progress", max: 1, value: 0 });
  const status = el("span", { class: "upload-status muted small" });
  const ui = { progress, status, tags, description };
  const pick = (input) => async () => {
    const list = Array.from(input.files || []);
    input.disabled = true;
    try {
      await uploadFiles(view, list, ui);
    } finally {
      input.disabled = false;
      input.value = "";
    }
  };
  files.addEventListener("change", pick(files));
  folder.addEventListener("change", pick(folder));
  return el("section", { class: "card" }, el("h2", { class: "card-title", text: "Upload" }),
    el("div", { class: "upload-grid" },
      el("div", { class: "field" }, el("label", { for: "doc-upload", class: "field-label",
        text: "Files" }), files),
      el("div", { class: "field" }, el("label", { for: "doc-upload-folder",
        class: "field-label", text: "A folder" }), folder),
      el("div", { class: "field" }, el("label", { for: tags.id, class: "field-label",
        text: "Tags (comma-separated)" }), tags),
      el("div", { class: "field" }, el("label", { for: description.id, class: "field-label",
        text: "Description" }), description)),
    el("div", { class: "upload-progress" }, progress, status));
}

const TEXT_EXTENSIONS = /\.(md|markdown|txt|text|json|csv|tsv|log|ya?ml|xml|html?|ini|toml)$/i;
const MIME_BY_EXTENSION = { md: "text/markdown", markdown: "text/markdown", txt: "text/plain",
  json: "application/json", csv: "text/csv", html: "text/html", htm: "text/html",
  xml: "application/xml", yaml: "application/yaml", yml: "application/yaml",
  pdf: "application/pdf", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg" };

function mimeOf(file) {
  if (file.type) return file.type;
  const extension = (file.name.split(".").pop() || "").toLowerCase();
  return MIME_BY_EXTENSION[extension] || "application/octet-stream";
}

/** Whether a file is sent as text: text/*, JSON or Markdown. */
function isTextFile(file) {
  const type = file.type || "";
  if (type.startsWith("text/") || /json|markdown/.test(type)) return true;
  return !type && TEXT_EXTENSIONS.test(file.name);
}

function uploadExtras(ui) {
  const extras = {};
  const tags = ui.tags.value.split(",").map((tag) => tag.trim()).filter(Boolean);
  if (tags.length) extras.tags = tags;
  if (ui.description.value.trim()) extras.description = ui.description.value.trim();
  return extras;
}

async function uploadFiles(view, files, ui) {
  if (!files.length) return;
  const totalBytes = files.reduce((sum, file) => sum + file.size, 0);
  ui.progress.max = Math.max(totalBytes, 1);
  ui.progress.value = 0;
  let sent = 0;
  let done = 0;
  let duplicates = 0;
  const extras = uploadExtras(ui);
  for (const [index, file] of files.entries()) {
    const name = file.webkitRelativePath || file.name;
    ui.status.textContent = "Uploading " + name + " (" + (index + 1) + "/" + files.length + ")…";
    try {
      const doc = file.size <= SMALL_UPLOAD_BYTES ? await uploadSmall(file, name, extras)
        : await uploadChunked(file, name, extras, (bytes) => {
          ui.progress.value = sent + bytes;
        });
      done += 1;
      if (isObject(doc) && doc.duplicate === true) duplicates += 1;
    } catch (error) {
      report(new ApiError(error.status, name + ": " + error.message));
      if (error.status === 401) return;
    }
    sent += file.size;
    ui.progress.value = sent;
  }
  ui.progress.value = ui.progress.max;
  const text = "Uploaded " + done + " of " + files.length + (files.length === 1 ? " file"
    : " files") + (duplicates ? " (" + duplicates + " already in the library)." : ".");
  ui.status.textContent = text;
  if (done === files.length) notify(text);
  if (view.ctx.alive) await loadDocuments(view).catch(report);
}

/** One request; a proxy without that endpoint gets the file through an upload instead. */
async function uploadSmall(file, name, extras) {
  const body = Object.assign({ name, mimeType: mimeOf(file) }, extras);
  if (isTextFile(file)) body.content = await file.text();
  else body.contentBase64 = bytesToBase64(await file.arrayBuffer());
  try {
    return await api("/api/v1/documents", { method: "POST", body });
  } catch (error) {
    if (error.status !== 404 && error.status !== 405) throw error;
    return uploadChunked(file, name, extras, () => {});
  }
}

async function uploadChunked(file, name, extras, onProgress) {
  const started = await api("/api/v1/uploads", { method: "POST",
    body: { name, mimeType: mimeOf(file), size: file.size } });
  const id = isObject(started) ? started.id : null;
  if (!id) throw new ApiError(0, "the proxy did not start the upload");
  const chunk = Math.max(1024, Number(started.chunkBytes) || 512 * 1024);
  for (let offset = 0; offset < file.size; offset += chunk) {
    const part = file.slice(offset, offset + chunk);
    const data = bytesToBase64(await part.arrayBuffer());
    await api("/api/v1/uploads/" + encodeSegment(id) + "/chunks", { method: "POST",
      body: { offset, data } });
    onProgress(offset + part.size);
  }
  return api("/api/v1/uploads/" + encodeSegment(id) + "/finish", { method: "POST",
    body: extras });
}

/* ------------------------------------------------------------------------------------------ */
/* Notifications page                                                                           */
/* ------------------------------------------------------------------------------------------ */

const SEVERITY_KINDS = { INFO: "info", SUCCESS: "ok", WARNING: "warn", ALERT: "danger",
  ERROR: "danger" };

async function renderNotifications(section, ctx) {
  const unread = el("input", { type: "checkbox", id: "notifications-unread" });
  const testEmail = button("Send a test e-mail", { id: "test-email" });
  const list = el("div", { class: "notifications" });
  const count = el("span");
  section.append(pageHeader("Notifications", count,
    el("label", { class: "check-label", for: "notifications-unread" }, unread,
      el("span", { text: "Unread only" })), testEmail),
  list);
  const refresh = async () => {
    const query = "?limit=200" + (unread.checked ? "&unreadOnly=true" : "");
    const data = await ctx.api("/api/v1/notifications" + query);
    if (!ctx.alive) return;
    const items = isObject(data) && Array.isArray(data.notifications)
      ? data.notifications.filter(isObject) : [];
    count.textContent = items.length + (items.length === 1 ? " notification" :
      " notifications") + ". Refreshed every 10 s.";
    setChildren(list, ...items.map((item) => notificationCard(item, refresh)));
    if (!items.length) list.append(card(null, muted("No notifications.")));
  };
  unread.addEventListener("change", () => refresh().catch(report));
  testEmail.addEventListener("click", () => sendTestEmail(testEmail));
  await refresh();
  ctx.every(10000, () => refresh().catch(report));
}

function notificationCard(item, refresh) {
  const id = String(item.id);
  const severity = String(item.severity || item.type || "INFO").toUpperCase();
  const actions = [];
  if (item.completed !== true) {
    const done = button("Mark done", { class: "btn small done" });
    done.addEventListener("click", () => notificationAction(id, "done", done, refresh));
    actions.push(done);
  }
  const remove = button("Delete", { class: "btn small subtle delete" });
  remove.addEventListener("click", () => notificationAction(id, "delete", remove, refresh));
  actions.push(remove);
  const link = safeHref(item.link);
  const classes = ["card", "notification", "severity-" + severity.toLowerCase()];
  if (item.completed === true) classes.push("completed");
  if (item.read === false) classes.push("unread");
  return el("article", { class: classes.join(" "), "data-notification": id },
    el("div", { class: "notification-head" },
      badge(severity, SEVERITY_KINDS[severity] || "muted"),
      el("h3", { text: item.title || "(no title)" }),
      item.completed === true ? badge("done", "ok") : null,
      item.read === false ? badge("unread", "info") : null,
      el("span", { class: "spacer" }), timeAgo(item.createdAt || item.created_at)),
    item.message ? el("p", { class: "notification-message", text: String(item.message) }) : null,
    link ? el("a", { href: link, rel: "noopener noreferrer", target: "_blank", text: link })
      : null,
    el("div", { class: "button-row" }, actions));
}

async function notificationAction(id, action, control, refresh) {
  control.disabled = true;
  try {
    if (action === "done") {
      await api("/api/v1/notifications/" + encodeSegment(id) + "/done", { method: "POST" });
      notify("Marked done.");
    } else {
      await api("/api/v1/notifications/" + encodeSegment(id), { method: "DELETE" });
      notify("Notification deleted.");
    }
    await refresh();
  } catch (error) {
    control.disabled = false;
    report(error);
  }
}

async function sendTestEmail(control) {
  control.disabled = true;
  try {
    const data = await api("/api/v1/notifications/test-email", { method: "POST", body: {} });
    const to = isObject(data) && data.to ? " to " + data.to : "";
    notify(isObject(data) && data.sent === false ? "The test e-mail was not sent."
      : "Test e-mail sent" + to + ".");
  } catch (error) {
    report(error);
  } finally {
    control.disabled = false;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Activity page                                                                                */
/* ------------------------------------------------------------------------------------------ */

const RANGES = [["1h", "Last hour", 60], ["24h", "Last 24 hours", 48], ["7d", "Last 7 days", 84]];

async function renderActivity(section, ctx) {
  const range = el("select", { id: "activity-range", "aria-label": "Time range" },
    RANGES.map(([value, text]) => el("option", { value, text, selected: value === "24h" })));
  const server = el("select", { id: "activity-server", "aria-label": "Server" },
    el("option", { value: "", text: "All servers" }));
  const tool = el("select", { id: "activity-tool", "aria-label": "Tool" },
    el("option", { value: "", text: "All tools" }));
  const csv = el("a", { id: "export-csv", class: "btn", text: "Export CSV", download: "" });
  const json = el("a", { id: "export-json", class: "btn", text: "Export JSON", download: "" });
  const charts = el("div", { class: "charts" });
  const tables = el("div", { class: "activity-tables" });
  const now = el("div", { id: "activity-now", class: "card now" });
  const view = { ctx, range, server, tool, csv, json, charts, tables };
  section.append(pageHeader("Activity", "Calls through the proxy, from its activity log.",
    range, server, tool, csv, json), now, charts, tables);
  const refreshNow = () => loadNow(now, ctx).catch(() => { now.hidden = true; });
  refreshNow();
  ctx.every(5000, refreshNow);
  const reload = () => loadActivity(view).catch(report);
  range.addEventListener("change", reload);
  server.addEventListener("change", () => {
    tool.value = "";
    reload();
  });
  tool.addEventListener("change", reload);
  await loadActivity(view);
  ctx.every(30000, reload);
}

/** The metrics' figures as they stand (the same as /metrics), above the activity log's. */
const NOW_FIGURES = [
  ["Requests served", (m) => sumOf(m, "mcp_server_operation_duration_seconds_count")],
  ["Failed", (m) => sumOf(m, "mcp_server_operation_duration_seconds_count",
    (labels) => "error_type" in labels)],
  ["In flight", (m) => sumOf(m, "pluggedin_proxy_requests_in_flight")],
  ["Sessions opened", (m) => sumOf(m, "pluggedin_proxy_sessions_opened_total")],
  ["Parked calls", (m) => sumOf(m, "pluggedin_proxy_parked_calls")],
  ["Server restarts", (m) => sumOf(m, "pluggedin_proxy_server_restarts_total")],
  ["Activity dropped", (m) => sumOf(m, "pluggedin_proxy_activity_dropped_total")],
  ["Store errors", (m) => sumOf(m, "pluggedin_proxy_store_errors_total")],
];

async function loadNow(card, ctx) {
  const response = await fetch("/api/v1/metrics", { credentials: "same-origin" });
  if (!response.ok) throw new Error("metrics: " + response.status);
  const samples = parseExposition(await response.text());
  if (!ctx.alive) return;
  setChildren(card, el("h2", { class: "card-title", text: "Now" }),
    el("dl", { class: "figures" }, NOW_FIGURES.map(([label, figure]) => el("div",
      { class: "figure" }, el("dt", { text: label }),
      el("dd", { text: formatCount(figure(samples)) })))));
  card.hidden = false;
}

/** The samples of a Prometheus text exposition: name, labels and value of each line. */
function parseExposition(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function sumOf(samples, name, keep) {
  return samples.filter((sample) => sample.name === name && (!keep || keep(sample.labels)))
    .reduce((total, sample) => total + (Number.isFinite(sample.value) ? sample.value : 0), 0);
}

function setOptions(select, values, allText) {
  const current = select.value;
  setChildren(select, el("option", { value: "", text: allText }),
    ...values.map((value) => el("option", { value, text: value })));
  select.value = values.includes(current) ? current : "";
}

async function loadActivity(view) {
  const entry = RANGES.find(([value]) => value === view.range.value) || RANGES[1];
  const params = new URLSearchParams({ since: entry[0], buckets: String(entry[2]) });
  if (view.server.value) params.set("server", view.server.value);
  if (view.tool.value) params.set("tool", view.tool.value);
  const exportParams = new URLSearchParams({ since: entry[0] });
  view.csv.href = "/api/v1/activity/export?" + exportParams + "&format=csv";
  view.json.href = "/api/v1/activity/export?" + exportParams + "&format=json";
  const data = await view.ctx.api("/api/v1/activity/series?" + params.toString());
  if (!view.ctx.alive || !isObject(data)) return;
  const rows = (key) => (Array.isArray(data[key]) ? data[key].filter(isObject) : []);
  const buckets = rows("buckets");
  const servers = rows("servers");
  const tools = rows("tools");
  if (!view.server.value) setOptions(view.server, servers.map((s) => String(s.server)),
    "All servers");
  if (!view.tool.value) {
    setOptions(view.tool, tools.map((t) => String(t.tool)).filter((t, i, all) =>
      all.indexOf(t) === i), "All tools");
  }
  setChildren(view.charts, ...activityCharts(buckets, entry[0]));
  setChildren(view.tables,
    card("Servers", activityTable("activity-servers", ["Server", "Calls", "Errors",
      "Error rate", "p50", "p95"], servers.map((s) => statRow([s.server], s)), 6)),
    card("Failing calls", activityTable("activity-failing", ["Time", "Server", "Tool", "Error"],
      rows("failing").map(failingRow), 4)),
    wideCard("Tools", activityTable("activity-tools", ["Tool", "Server", "Calls", "Errors",
      "Error rate", "p50", "p95"], tools.map((t) => statRow([t.tool, t.server], t)), 7)),
    wideCard("Slowest calls", activityTable("activity-slowest", ["Time", "Server", "Tool",
      "Duration", "Result"], rows("slowest").map(slowRow), 5)));
}

function wideCard(title, ...children) {
  const section = card(title, ...children);
  section.classList.add("wide");
  return section;
}

function activityTable(id, headers, rows, columns) {
  return el("div", { class: "table-wrap" }, table(headers, rows.length ? rows
    : [emptyRow(columns, "Nothing in this range.")], { id }));
}

function statRow(names, stat) {
  return el("tr", {}, names.map((name) => el("td", { text: String(name ?? "—") })),
    el("td", { class: "num", text: String(stat.calls ?? 0) }),
    el("td", { class: "num", text: String(stat.errors ?? 0) }),
    el("td", { class: "num", text: formatPercent(stat.errors || 0, stat.calls || 0) }),
    el("td", { class: "num", text: formatMs(stat.p50Ms) }),
    el("td", { class: "num", text: formatMs(stat.p95Ms) }));
}

/** A time as "HH:MM:SS" today, "MM-DD HH:MM" before; the full date as its tooltip. */
function shortTime(value) {
  const date = toDate(value);
  if (!date) return el("span", { text: "—" });
  const today = new Date().toDateString() === date.toDateString();
  const text = today
    ? pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds())
    : pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " + pad(date.getHours()) + ":" +
      pad(date.getMinutes());
  return el("time", { dateTime: date.toISOString(), title: formatTime(value), text });
}

/** An activity entry's fields: when, which server and tool, how long. */
function entryFacts(call) {
  return { time: call.at ?? call.time, server: String(call.server ?? "—"),
    tool: String(call.item ?? call.tool ?? "—"), ms: call.durationMs ?? call.ms };
}

function slowRow(call) {
  const facts = entryFacts(call);
  return el("tr", {}, el("td", {}, shortTime(facts.time)),
    el("td", { text: facts.server }), el("td", { text: facts.tool }),
    el("td", { class: "num", text: formatMs(facts.ms) }),
    el("td", {}, call.ok === false ? badge("error", "danger") : badge("ok", "ok")));
}

function failingRow(call) {
  const facts = entryFacts(call);
  return el("tr", {}, el("td", {}, shortTime(facts.time)),
    el("td", { text: facts.server }), el("td", { text: facts.tool }),
    el("td", { class: "error-text", text: String(call.error ?? "—") }));
}

/* Charts: hand-drawn SVG over the buckets (bars for calls, lines for rates and durations). */

/** Chart geometry in SVG units; a chart's width is about the pixels it gets, so text keeps
 * its size. */
const CHART = { height: 200, left: 52, right: 14, top: 14, bottom: 28 };

function formatCount(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** A round upper bound for an axis. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function bucketLabel(value, range) {
  const date = toDate(value);
  if (!date) return "";
  const time = pad(date.getHours()) + ":" + pad(date.getMinutes());
  if (range !== "7d") return time;
  return date.toLocaleDateString(undefined, { weekday: "short" }) + " " + time;
}

/** The frame of a chart: axes, grid, labels; returns the scales. */
function chartFrame(name, title, buckets, maxValue, format, range, width) {
  const { height, left, right, top, bottom } = CHART;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const count = Math.max(buckets.length, 1);
  const band = plotWidth / count;
  const x = (index) => left + band * index + band / 2;
  const y = (value) => top + plotHeight - (plotHeight * value) / maxValue;
  const root = svg("svg", { class: "chart", "data-chart": name, viewBox: "0 0 " + width + " " +
    height, role: "img", "aria-label": title },
  svg("title", {}, title));
  for (const fraction of [0, 0.5, 1]) {
    const value = maxValue * fraction;
    root.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(value),
      y2: y(value) }), svg("text", { class: "axis", x: left - 6, y: y(value) + 4,
      "text-anchor": "end" }, format(value)));
  }
  const ticks = Math.min(6, buckets.length);
  for (let i = 0; i < ticks; i += 1) {
    const index = ticks === 1 ? 0 : Math.round((i * (buckets.length - 1)) / (ticks - 1));
    root.append(svg("text", { class: "axis", x: x(index), y: height - 8,
      "text-anchor": "middle" }, bucketLabel(buckets[index].start, range)));
  }
  return { root, x, y, band, plotTop: top, plotHeight, width };
}

/** Per-bucket invisible areas whose tooltips give the figures. */
function chartTooltips(frame, buckets, describe) {
  buckets.forEach((bucket, index) => {
    frame.root.append(svg("rect", { class: "hover", x: frame.x(index) - frame.band / 2,
      y: frame.plotTop, width: frame.band, height: frame.plotHeight },
    svg("title", {}, bucketLabel(bucket.start, "7d") + " — " + describe(bucket))));
  });
}

/** A polyline with gaps where a value is missing; single points get a dot. */
function linePath(frame, values, className) {
  let path = "";
  const dots = [];
  values.forEach((value, index) => {
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    const previous = values[index - 1];
    const next = values[index + 1];
    const joined = typeof previous === "number" && Number.isFinite(previous);
    path += (joined ? " L" : " M") + frame.x(index).toFixed(1) + " " + frame.y(value).toFixed(1);
    if (!joined && !(typeof next === "number" && Number.isFinite(next))) {
      dots.push(svg("circle", { class: className, cx: frame.x(index), cy: frame.y(value),
        r: 2.5 }));
    }
  });
  return [path ? svg("path", { class: "line " + className, d: path.trim() }) : null, dots];
}

function noData(frame) {
  return svg("text", { class: "no-data", x: frame.width / 2, y: CHART.height / 2,
    "text-anchor": "middle" }, "No calls in this range");
}

function legend(entries) {
  return el("div", { class: "legend" }, entries.map(([className, text]) =>
    el("span", { class: "legend-item" }, el("span", { class: "swatch " + className }), text)));
}

function activityCharts(buckets, range) {
  const calls = buckets.map((b) => Number(b.calls) || 0);
  const errors = buckets.map((b) => Number(b.errors) || 0);
  const rates = buckets.map((b, i) => (calls[i] ? (100 * errors[i]) / calls[i] : null));
  // A bucket without calls has no durations.
  const p50 = buckets.map((b, i) => (calls[i] && typeof b.p50Ms === "number" ? b.p50Ms : null));
  const p95 = buckets.map((b, i) => (calls[i] && typeof b.p95Ms === "number" ? b.p95Ms : null));
  const totalCalls = calls.reduce((a, b) => a + b, 0);
  const totalErrors = errors.reduce((a, b) => a + b, 0);
  const describe = (b) => (b.calls || 0) + " calls, " + (b.errors || 0) + " errors" +
    (b.calls ? ", p50 " + formatMs(b.p50Ms) + ", p95 " + formatMs(b.p95Ms) : "");

  const callFrame = chartFrame("calls", "Calls per interval", buckets,
    niceMax(Math.max(0, ...calls)), formatCount, range, 980);
  buckets.forEach((bucket, index) => {
    const width = Math.max(1, callFrame.band * 0.7);
    const x = callFrame.x(index) - width / 2;
    const bar = (value, className) => svg("rect", { class: "bar " + className, x, width,
      y: callFrame.y(value), height: Math.max(0, callFrame.y(0) - callFrame.y(value)) });
    if (calls[index]) callFrame.root.append(bar(calls[index], "calls"));
    if (errors[index]) callFrame.root.append(bar(errors[index], "errors"));
  });
  const rateFrame = chartFrame("errors", "Error rate", buckets,
    niceMax(Math.max(1, ...rates.filter((r) => r !== null))), (v) => formatCount(v) + "%",
    range, 480);
  append(rateFrame.root, linePath(rateFrame, rates, "rate"));
  const durations = p95.concat(p50).filter((v) => v !== null);
  const msFrame = chartFrame("duration", "Duration p50 and p95", buckets,
    niceMax(Math.max(1, ...durations)), formatMs, range, 480);
  append(msFrame.root, [linePath(msFrame, p95, "p95"), linePath(msFrame, p50, "p50")]);
  for (const frame of [callFrame, rateFrame, msFrame]) {
    if (!totalCalls) frame.root.append(noData(frame));
    chartTooltips(frame, buckets, describe);
  }
  return [
    chartCard("Calls", totalCalls + " calls, " + totalErrors + " errors", callFrame.root,
      legend([["calls", "calls"], ["errors", "errors"]])),
    chartCard("Error rate", formatPercent(totalErrors, totalCalls) + " overall", rateFrame.root,
      legend([["rate", "errors / calls"]])),
    chartCard("Duration", "per interval", msFrame.root,
      legend([["p50", "p50"], ["p95", "p95"]])),
  ];
}

function chartCard(title, summary, chart, key) {
  return el("section", { class: "card chart-card" },
    el("div", { class: "chart-head" }, el("h2", { class: "card-title", text: title }),
      el("span", { class: "muted small", text: summary })),
    chart, key);
}

/* ------------------------------------------------------------------------------------------ */
/* Workspaces page                                                                              */
/* ------------------------------------------------------------------------------------------ */

async function renderWorkspaces(section, ctx) {
  const list = el("div", { class: "workspaces" });
  const active = el("div", { class: "active-workspace" });
  const reached = el("div", { class: "reached" });
  const create = el("div", { class: "create-slot" });
  const view = { ctx, list, active, reached, create };
  section.append(pageHeader("Workspaces", "Named sets of servers; the active one is what " +
    "clients see, in every proxy on this store."), active, reached, list, create);
  await loadWorkspaces(view);
}

async function loadWorkspaces(view) {
  const [data, serverData] = await Promise.all([view.ctx.api("/api/v1/workspaces"),
    view.ctx.api("/api/v1/servers").catch(() => ({ servers: [] }))]);
  if (!view.ctx.alive) return;
  const workspaces = isObject(data) && Array.isArray(data.workspaces)
    ? data.workspaces.filter(isObject) : [];
  const current = isObject(data) ? data.active ?? null : null;
  const servers = (isObject(serverData) && Array.isArray(serverData.servers)
    ? serverData.servers : []).map((server) => String(server.name));
  const all = button("Serve all servers", { id: "workspace-all", class: "btn",
    disabled: current === null });
  all.addEventListener("click", () => switchWorkspace(view, null, all));
  setChildren(view.active, el("div", { class: "card active-card" },
    el("span", { text: "Active: " }),
    el("strong", { text: current === null ? "all servers (no workspace)" : String(current) }),
    el("span", { class: "spacer" }), all));
  setChildren(view.list, ...workspaces.map((w) => workspaceCard(view, w, current)));
  if (!workspaces.length) view.list.append(card(null, muted("No workspaces yet.")));
  fillCreateForm(view, servers);
}

function workspaceCard(view, workspace, current) {
  const name = String(workspace.name);
  const isCurrent = name === current;
  const use = button(isCurrent ? "Current" : "Switch", { class: "btn small switch" +
    (isCurrent ? "" : " primary"), disabled: isCurrent });
  const remove = button("Delete", { class: "btn small subtle delete" });
  use.addEventListener("click", () => switchWorkspace(view, name, use));
  remove.addEventListener("click", () => deleteWorkspace(view, name, remove));
  const servers = Array.isArray(workspace.servers) ? workspace.servers : [];
  return el("article", { class: "card workspace" + (isCurrent ? " current" : ""),
    "data-workspace": name },
  el("div", { class: "workspace-head" }, el("h3", { text: name }),
    isCurrent ? badge("active", "ok") : null, el("span", { class: "spacer" }), use, remove),
  el("div", { class: "tags" }, servers.length ? servers.map((s) => el("span", { class: "tag",
    text: String(s) })) : muted("No servers.")));
}

/** Switches the active workspace and says which running proxies took the change. */
async function switchWorkspace(view, name, control) {
  control.disabled = true;
  try {
    const data = await api("/api/v1/workspaces/switch", { method: "POST", body: { name } });
    notify(name === null ? "Serving all servers." : "Switched to " + name + ".");
    setChildren(view.reached, switchReport(data));
    await loadWorkspaces(view);
  } catch (error) {
    control.disabled = false;
    report(error);
  }
}

/** What the switch answer says beyond the active name: the proxies it reached, as given. */
function switchReport(data) {
  if (!isObject(data)) return muted("");
  const details = Object.keys(data).filter((key) => key !== "active");
  if (!details.length) return el("div");
  return el("div", { class: "card switch-report" }, el("h2", { class: "card-title",
    text: "Switch applied" }),
  details.map((key) => {
    const value = data[key];
    if (Array.isArray(value)) {
      return el("div", { class: "report-part" }, el("strong", { text: key }),
        value.length ? el("ul", {}, value.map((entry) => el("li", {
          text: isObject(entry) ? describeProxy(entry) : String(entry) })))
          : muted("none"));
    }
    return el("p", {}, el("strong", { text: key + ": " }),
      isObject(value) ? pretty(value) : String(value));
  }));
}

function describeProxy(entry) {
  const parts = [];
  for (const [key, value] of Object.entries(entry)) {
    parts.push(key + ": " + (isObject(value) || Array.isArray(value) ? JSON.stringify(value)
      : String(value)));
  }
  return parts.join(", ");
}

async function deleteWorkspace(view, name, control) {
  control.disabled = true;
  try {
    await api("/api/v1/workspaces/" + encodeSegment(name), { method: "DELETE" });
    notify("Deleted workspace " + name + ".");
    await loadWorkspaces(view);
  } catch (error) {
    control.disabled = false;
    report(error);
  }
}

function fillCreateForm(view, servers) {
  const name = el("input", { type: "text", name: "name", id: nextFieldId(), required: true,
    autocomplete: "off", "aria-required": "true" });
  const nameWrap = el("div", { class: "field" }, el("label", { for: name.id,
    class: "field-label" }, "Name", requiredMark(true)), name);
  const boxes = servers.map((server) => el("input", { type: "checkbox", name: "servers",
    value: server, id: nextFieldId() }));
  const serverWrap = el("fieldset", { class: "choices" }, el("legend", { text: "Servers" }),
    el("div", { class: "choice-list" }, boxes.length ? boxes.map((box) => el("label",
      { for: box.id, class: "check-label" }, box, el("span", { text: box.value })))
      : muted("No servers are configured.")));
  const submit = el("button", { type: "submit", class: "btn primary", text: "Create" });
  const form = el("form", { id: "workspace-create", class: "card", novalidate: true },
    el("h2", { class: "card-title", text: "New workspace" }), nameWrap, serverWrap,
    el("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = name.value.trim();
    if (!value) {
      showFieldErrors(form, [{ wrap: nameWrap, control: name, message: "Give it a name." }]);
      return;
    }
    clearFieldErrors(form);
    const chosen = boxes.filter((box) => box.checked).map((box) => box.value);
    createWorkspace(view, value, chosen, submit);
  });
  setChildren(view.create, form);
}

async function createWorkspace(view, name, servers, control) {
  control.disabled = true;
  try {
    await api("/api/v1/workspaces", { method: "POST", body: { name, servers } });
    notify("Created workspace " + name + ".");
    await loadWorkspaces(view);
  } catch (error) {
    control.disabled = false;
    report(error);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Settings page                                                                                */
/* ------------------------------------------------------------------------------------------ */

async function renderSettings(section, ctx) {
  const config = el("pre", { id: "config", class: "code config" }, "Loading…");
  const toggles = el("div", { class: "toggles-slot" });
  section.append(pageHeader("Settings", "The configuration this proxy runs with (secrets " +
    "masked), and which tools clients get."), card("Effective configuration", config), toggles);
  const [configDone, togglesDone] = await Promise.allSettled([
    ctx.api("/api/v1/config").then((data) => {
      config.textContent = pretty(data);
    }),
    renderToolToggles(toggles, ctx),
  ]);
  if (configDone.status === "rejected") {
    config.textContent = "Not available (" + configDone.reason.message + ").";
    report(configDone.reason);
  }
  if (togglesDone.status === "rejected") report(togglesDone.reason);
}

/**
 * One switch per tool, for every client: the catalog's tools (on) and the switched-off ones.
 * Left out when the proxy offers no such switch.
 */
async function renderToolToggles(slot, ctx) {
  let disabled;
  try {
    disabled = await ctx.api("/api/v1/tools/disabled");
  } catch (error) {
    if (error.status === 404 || error.status === 405) return;
    throw error;
  }
  const filter = el("input", { type: "search", id: "toggle-search", class: "search",
    placeholder: "Filter tools", autocomplete: "off", "aria-label": "Filter tools" });
  const list = el("ul", { class: "toggles" });
  const summary = el("span", { class: "muted small" });
  setChildren(slot, el("section", { class: "card" },
    el("div", { class: "chart-head" }, el("h2", { class: "card-title", text: "Tools" }),
      summary),
    el("p", { class: "muted small", text: "A tool switched off is hidden from every client " +
      "of every proxy on this store, until it is switched on again." }),
    filter, list));
  const load = async (off) => {
    const data = await ctx.api("/api/v1/tools");
    const names = (isObject(data) && Array.isArray(data.tools) ? data.tools : [])
      .map((tool) => String(tool.name));
    const offNames = (isObject(off) && Array.isArray(off.disabled) ? off.disabled : [])
      .map(String);
    const all = names.concat(offNames.filter((name) => !names.includes(name))).sort();
    summary.textContent = names.length + " on, " + offNames.length + " off";
    setChildren(list, all.map((name) => toggleRow(name, !offNames.includes(name), reload)));
    applyFilter(list, filter.value);
  };
  const reload = async () => load(await ctx.api("/api/v1/tools/disabled"));
  filter.addEventListener("input", () => applyFilter(list, filter.value));
  await load(disabled);
}

function applyFilter(list, text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  for (const row of list.children) {
    const name = (row.dataset.name || "").toLowerCase();
    row.hidden = !words.every((word) => name.includes(word));
  }
}

function toggleRow(name, on, reload) {
  const box = el("input", { type: "checkbox", role: "switch", id: nextFieldId(),
    "data-tool-toggle": name, checked: on });
  box.addEventListener("change", () => toggleTool(name, box, reload));
  return el("li", { class: "toggle-row" + (on ? "" : " off"), "data-name": name },
    el("label", { for: box.id, class: "toggle" }, box, el("code", { text: name }),
      el("span", { class: "toggle-state muted small", text: on ? "on" : "off" })));
}

async function toggleTool(name, box, reload) {
  const on = box.checked;
  box.disabled = true;
  try {
    await api("/api/v1/tools/" + encodeSegment(name) + "/" + (on ? "enable" : "disable"),
      { method: "POST" });
    notify((on ? "Switched on " : "Switched off ") + name + ".");
    await reload();
  } catch (error) {
    box.checked = !on;
    box.disabled = false;
    report(error);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Start                                                                                        */
/* ------------------------------------------------------------------------------------------ */

const PAGES = {
  servers: renderServers,
  playground: renderPlayground,
  tools: renderTools,
  prompts: renderPrompts,
  resources: renderResources,
  documents: renderDocuments,
  notifications: renderNotifications,
  activity: renderActivity,
  workspaces: renderWorkspaces,
  settings: renderSettings,
};

/** Whether the proxy wants a sign-in, and whether this browser has one: {required, signedIn}. */
async function sessionState() {
  try {
    const state = await api("/api/v1/session");
    return isObject(state) ? state : {};
  } catch (error) {
    return {};
  }
}

/** Says whose console this is when it is not the HTTP proxy's own (GET /api/v1/console). */
async function showAttachment() {
  let data;
  try {
    data = await api("/api/v1/console");
  } catch (error) {
    return;
  }
  if (!isObject(data) || !data.attached || data.attached === "http") return;
  const strip = document.querySelector(".attachment");
  strip.textContent = typeof data.note === "string" ? data.note
    : "Attached to: " + String(data.attached);
  strip.className = "attachment " + (data.attached === "standalone" ? "warn" : "info");
  strip.hidden = false;
}

async function start() {
  document.querySelector(".banner-close").addEventListener("click", dismissBanner);
  document.getElementById("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => {
    if (!auth.asking) route();
  });
  showAttachment();
  const session = await sessionState();
  if (session.required === true) {
    auth.signedIn = session.signedIn === true;
    document.getElementById("signout").hidden = !auth.signedIn;
    if (!auth.signedIn) {
      showSignIn();
      return;
    }
  }
  route();
}

start();
