// The outbox: every response (and batch of browser events) is written to localStorage before it
// is sent, with a client-made UUID, and stays there until the server confirms it. A reload or a
// network drop therefore loses nothing, and a resend of the same UUID is answered by the server
// with the stored result instead of a second row.

import { api, backoff, newUUID, sleep, transient } from "./api.js";

export class Outbox {
  constructor(key, onState = () => {}) {
    this.key = key;
    this.onState = onState;
    this.draining = null;
    this.wake = null;
    window.addEventListener("online", () => this.wake && this.wake());
  }

  items() {
    try {
      return JSON.parse(localStorage.getItem(this.key) || "[]");
    } catch {
      return [];
    }
  }

  save(items) {
    localStorage.setItem(this.key, JSON.stringify(items));
  }

  size() {
    return this.items().length;
  }

  // Queue a POST; a response body gets the item's UUID as its client_uuid.
  add(path, body, token, { withUUID = true } = {}) {
    const id = newUUID();
    const item = { id, path, token, body: withUUID ? { ...body, client_uuid: id } : body };
    this.save([...this.items(), item]);
    return id;
  }

  remove(id) {
    this.save(this.items().filter((it) => it.id !== id));
  }

  // Send everything, oldest first, retrying with exponential backoff; resolves when empty.
  drain() {
    if (!this.draining) {
      this.draining = this.run().finally(() => {
        this.draining = null;
      });
    }
    return this.draining;
  }

  async run() {
    let attempt = 0;
    for (;;) {
      const [item] = this.items();
      if (!item) {
        this.onState(false);
        return;
      }
      let res;
      try {
        res = await api(item.path, { method: "POST", body: item.body, token: item.token });
      } catch {
        res = { status: 0 };
      }
      if (!transient(res.status)) {
        if (!res.ok) console.error("the server refused a queued item", item, res.data);
        this.remove(item.id);
        attempt = 0;
        this.onState(false);
        continue;
      }
      this.onState(true);
      await Promise.race([
        sleep(backoff(attempt++)),
        new Promise((resolve) => {
          this.wake = resolve;
        }),
      ]);
      this.wake = null;
    }
  }
}
