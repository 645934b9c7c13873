/** One received event as a panel shows it. */
export interface Receipt {
  seq: number;
  type: string;
  id: string;
  /** Publish to receipt, in ms; `estimated` when this page did not publish it (then from the envelope's `time`). */
  latencyMs: number;
  estimated: boolean;
  /** Published while the panel was disconnected, and replayed when it resumed. */
  resumed?: boolean;
  /** Webhooks: whether the signature verified, and with whose secret. */
  signature?: { verified: boolean; detail: string };
  /** Webhooks: the inbox's id of the request, `<start>-<n>`. */
  receipt?: string;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** A panel's list of received events, newest first; each item carries `data-seq`. */
export class EventLog {
  readonly #list: HTMLOListElement;
  readonly #keep: number;

  /** @param keep items kept in the list. @default 300 */
  constructor(list: HTMLOListElement, keep = 300) {
    this.#list = list;
    this.#keep = keep;
  }

  add(receipt: Receipt): void {
    const item = document.createElement('li');
    item.className = 'fresh';
    item.dataset.seq = String(receipt.seq);
    item.dataset.type = receipt.type;
    item.dataset.eventId = receipt.id;
    if (receipt.resumed) item.dataset.resumed = 'true';
    if (receipt.receipt) item.dataset.receipt = receipt.receipt;
    item.title = receipt.receipt ? `${receipt.id}, inbox receipt ${receipt.receipt}` : receipt.id;
    item.append(
      element('span', 'seq', `#${receipt.seq}`),
      element('span', 'type', receipt.type),
      element('span', 'latency', `${receipt.estimated ? '≈' : ''}${Math.round(receipt.latencyMs)} ms`),
    );
    if (receipt.resumed) item.append(element('span', 'resumed', 'published while disconnected, replayed on resume'));
    if (receipt.signature) {
      item.dataset.verified = String(receipt.signature.verified);
      item.append(element('span', `signature ${receipt.signature.verified ? 'ok' : 'bad'}`, receipt.signature.detail));
    }
    this.#prepend(item);
  }

  /** A line that is not an event: disconnected, reconnected, reset. */
  note(text: string): void {
    this.#prepend(element('li', 'note', text));
  }

  #prepend(item: HTMLLIElement): void {
    this.#list.prepend(item);
    while (this.#list.childElementCount > this.#keep) this.#list.lastElementChild?.remove();
  }
}
