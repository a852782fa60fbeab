// An unknown station's board looks again every minute, so a screen set up before its station
// exists starts working by itself (a script rather than a meta refresh, which screen readers and
// axe-core rightly treat as taking control away from a reader).
const AGAIN_MS = 60_000;
setTimeout(() => window.location.reload(), AGAIN_MS);
