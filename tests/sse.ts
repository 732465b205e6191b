/** A Server-Sent Events reader for tests, after the parsing rules of the HTML standard. */

/** One dispatched event. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
  /** The last event id when it was dispatched (as `EventSource.lastEventId`). */
  readonly lastId: string;
  /** True when the event block itself carried an `id:` field. */
  readonly hasId: boolean;
}

/** The events of an event-stream body, as they arrive. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoderStream();
  const reader = body.pipeThrough(decoder).getReader();
  let buffer = "", event = "", data: string[] = [], lastId = "", hasId = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += value;
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length) {
            yield { event: event || "message", data: data.join("\n"), lastId, hasId };
          }
          event = "";
          data = [];
          hasId = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id" && !value.includes("\0")) {
          lastId = value;
          hasId = true;
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Reads events until `stop` says so (or the stream ends). */
export async function collectEvents(
  body: ReadableStream<Uint8Array>,
  stop: (e: SseEvent) => boolean = () => false,
): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of readEvents(body)) {
    out.push(e);
    if (stop(e)) break;
  }
  return out;
}
