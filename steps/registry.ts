/**
 * A registry of plug-ins of one sort, by key, in the order they were registered: duplicates are
 * refused, an unknown key is reported with the closest known one. Used by `kind.ts`.
 *
 * @module
 */
import { closest } from "../engine/runbook/suggest.ts";

/** A plug-in's registration: dispose of it to take the plug-in out again. */
export interface Registration extends Disposable {
  /** Takes the plug-in out (a no-op the second time). */
  unregister(): void;
}

/** A registration refused, or a lookup of a name nothing registered. */
export class RegistryError extends Error {
  /** Makes one. */
  constructor(message: string) {
    super(message);
    this.name = "RegistryError";
  }
}

/** Plug-ins of one sort, by key, in the order they were registered. */
export class Registry<T> {
  readonly #items = new Map<string, T>();
  #version = 0;

  /** An empty registry of `what` (`source`), for messages. */
  constructor(readonly what: string) {}

  /** Changes each time something is registered or taken out. */
  get version(): number {
    return this.#version;
  }

  /** Registers `item` as `key`. @throws {RegistryError} when the key is taken or malformed. */
  register(key: string, item: T): Registration {
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(key)) {
      throw new RegistryError(
        `${this.what} "${key}": use lowercase letters, digits, "-", "_" and "."`,
      );
    }
    if (this.#items.has(key)) {
      throw new RegistryError(`${this.what} "${key}" is already registered`);
    }
    this.#items.set(key, item);
    this.#version++;
    const unregister = () => {
      if (this.#items.get(key) !== item) return;
      this.#items.delete(key);
      this.#version++;
    };
    return { unregister, [Symbol.dispose]: unregister };
  }

  /** The item registered as `key`, if any. */
  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  /** The item registered as `key`. @throws {RegistryError} naming the closest key. */
  require(key: string): T {
    const item = this.#items.get(key);
    if (item !== undefined) return item;
    const known = [...this.#items.keys()];
    const near = closest(key, known);
    const hint = near === undefined ? "" : ` (did you mean "${near}"?)`;
    throw new RegistryError(
      `unknown ${this.what} "${key}"${hint}; registered: ${known.join(", ") || "none"}`,
    );
  }

  /** Every item, in the order they were registered. */
  all(): T[] {
    return [...this.#items.values()];
  }
}
