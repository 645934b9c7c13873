/** A `Retry-After` header's wait in ms (delay-seconds or an HTTP date), or undefined when there is none or it means nothing. */
export function retryAfterOf(header: string | null, now = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its month (`Wed, 21 Oct 2015 07:28:00 GMT`); Date.parse would take "-1" or "1.5" for dates too.
  const at = /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether an answer of `status` passes, so that asking again later may succeed: 408, 429 or a 5xx. */
export function passingStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}
