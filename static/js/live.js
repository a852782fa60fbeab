// Live updates over a WebSocket that heals itself.
//
// Reconnects with exponential backoff and full jitter (so a restarted server is not hit by every
// screen at the same instant), polls over HTTP every 30 s while the socket is down, and treats
// every snapshot as the new truth. A gap in `seq` means a message was lost: the page resyncs. So
// does a new `epoch`: the server's counters restarted, and their numbers mean nothing next to ours.

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
export const POLL_MS = 30_000;
const SILENCE_MS = 50_000; // the server pings every 20 s; this long without a word means a dead link
const GREETING_MS = 10_000; // the snapshot comes right after the handshake

export const LABELS = {
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
};

export function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${path}`;
}

export class LiveChannel {
  /**
   * @param {object} options
   * @param {string} options.path       WebSocket path, e.g. `/ws/stations/3`
   * @param {(msg: object) => void} options.onMessage  snapshot / status / availability messages
   * @param {() => Promise<void>} [options.poll]  HTTP fallback, called every 30 s while disconnected
   * @param {(stationId: number|null) => void} [options.onGap]  a message was missed: resync
   * @param {(state: string) => void} [options.onState]
   * @param {(first: boolean) => void} [options.onOpen]  the socket is up (again)
   */
  constructor({ path, onMessage, poll, onGap, onState, onOpen }) {
    this.path = path;
    this.onMessage = onMessage;
    this.poll = poll;
    this.onGap = onGap || (() => {});
    this.onState = onState || (() => {});
    this.onOpen = onOpen || (() => {});
    this.state = "connecting";
    this.attempt = 0;
    this.seqs = new Map();
    this.epoch = undefined;
    this.socket = null;
    this.retryTimer = null;
    this.pollTimer = null;
    this.silenceTimer = null;
    this.stopped = false;
    this.everConnected = false;
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state !== "connected") this.reconnectNow();
    });
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopPolling();
    clearTimeout(this.silenceTimer);
    if (this.socket) this.socket.close(1000, "page closed");
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    let socket;
    try {
      socket = new WebSocket(socketUrl(this.path));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    let greeted = false;
    this.touch(GREETING_MS);
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      this.touch();
      if (!greeted) {
        // Live means the server has spoken (its snapshot), not merely that a handshake completed.
        greeted = true;
        this.markLive();
      }
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatch(msg);
    });
    socket.addEventListener("close", () => {
      if (socket !== this.socket) return;
      this.socket = null;
      clearTimeout(this.silenceTimer);
      if (!this.stopped) this.scheduleReconnect();
    });
    socket.addEventListener("error", () => {
      // "close" follows; nothing else to do here.
    });
  }

  markLive() {
    const first = !this.everConnected;
    this.attempt = 0;
    this.everConnected = true;
    this.seqs.clear();
    this.stopPolling();
    this.setState("connected");
    this.onOpen(first);
  }

  dispatch(msg) {
    if (!msg || typeof msg !== "object" || msg.type === "ping") return;
    if (msg.type === "resync") {
      this.seqs.clear();
      this.onGap(null);
      return;
    }
    if (this.epochChanged(msg) && msg.type !== "snapshot") {
      this.onGap(msg.station_id ?? null);
    }
    if (msg.type === "snapshot" && Array.isArray(msg.stations)) {
      for (const s of msg.stations) if (typeof s.seq === "number") this.seqs.set(s.station_id ?? s.id, s.seq);
      this.onMessage(msg);
      return;
    }
    const id = msg.station_id ?? null;
    if (typeof msg.seq === "number" && id !== null) {
      const last = this.seqs.get(id);
      if (msg.type === "snapshot") {
        this.seqs.set(id, msg.seq);
      } else if (last !== undefined && msg.seq <= last) {
        return; // already seen (or older than the snapshot we hold)
      } else {
        this.seqs.set(id, msg.seq);
        if (last !== undefined && msg.seq > last + 1) this.onGap(id);
      }
    }
    this.onMessage(msg);
  }

  /** Whether `msg` numbers its `seq` in a new epoch; the numbers seen so far are then forgotten. */
  epochChanged(msg) {
    if (typeof msg.epoch !== "string" || msg.epoch === this.epoch) return false;
    const known = this.epoch !== undefined;
    this.epoch = msg.epoch;
    if (known) this.seqs.clear();
    return known;
  }

  /** Give up on a socket that stays silent for `ms` (a dead link sends no close frame). */
  touch(ms = SILENCE_MS) {
    clearTimeout(this.silenceTimer);
    const socket = this.socket;
    this.silenceTimer = setTimeout(() => {
      if (socket && socket === this.socket) {
        this.socket = null;
        socket.close(4000, "silent");
        this.scheduleReconnect();
      }
    }, ms);
  }

  scheduleReconnect() {
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    if (this.attempt > 0 || this.everConnected) this.startPolling();
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Skip the backoff wait: the browser says the network is back or the tab is visible again. */
  reconnectNow() {
    if (this.stopped || this.socket) return;
    this.attempt = 0;
    this.connect();
  }

  startPolling() {
    if (!this.poll || this.pollTimer) return;
    const run = () => this.poll().catch(() => {});
    run();
    this.pollTimer = setInterval(run, POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}

/** Keep a `.conn` indicator element in step with a channel's state. */
export function bindIndicator(el, channel, labels = LABELS) {
  const update = (state) => {
    if (!el) return;
    el.dataset.state = state;
    const label = el.querySelector(".conn__label");
    if (label) label.textContent = labels[state] ?? state;
  };
  const previous = channel.onState;
  channel.onState = (state) => {
    update(state);
    previous(state);
  };
  update(channel.state);
}
