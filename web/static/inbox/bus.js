// bus.js: the dashboard's event bus (docs/dashboard.md). Views talk to
// each other and hear the socket through it, never by reaching into each
// other's DOM. A listener that throws is logged and does not stop the
// others.

// createBus returns {on(type, fn) -> off(), emit(type, data)}.
export function createBus() {
  const listeners = new Map(); // type -> Set of fn

  function on(type, fn) {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
    return () => listeners.get(type).delete(fn);
  }

  function emit(type, data) {
    for (const fn of [...(listeners.get(type) || [])]) {
      try {
        fn(data);
      } catch (e) {
        console.error(`bus ${type} listener:`, e);
      }
    }
  }

  return { on, emit };
}
