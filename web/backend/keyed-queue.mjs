// Runs async jobs one at a time per key (a thread, an item), in arrival order.
//
// Why: a thread's comments are stored with the id rt gave them, and "load the
// comments + the id to resume from" must see either all of a publish (published
// AND stored) or none of it. Serialising publish+store and load per thread gives
// exactly that: a load never runs between a publish and its store.
//
// Contract: run(key, job) calls job() exactly once, after every job queued
// earlier for the same key has settled, and resolves/rejects with job's result.
// A failing job does not block the ones after it.

export class KeyedQueue {
  constructor() {
    /** @type {Map<string, Promise<void>>} tail of each key's chain */
    this.tails = new Map();
  }

  run(key, job) {
    const prev = this.tails.get(key) || Promise.resolve();
    const result = prev.then(() => job());
    const tail = result.then(() => {}, () => {});
    this.tails.set(key, tail);
    // Forget idle keys so the map does not grow with every key ever seen.
    tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return result;
  }
}
