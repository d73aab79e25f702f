/** Runs async sections one at a time per key (one project's check-then-insert must not interleave). */
export class KeyedLock<K> {
  private readonly tails = new Map<K, Promise<unknown>>();

  run<T>(key: K, section: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(section, section);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    // `tail` never rejects (it caught above), so nothing is lost by this `.then` having no handler of its own.
    tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }, () => {});
    return result;
  }
}
