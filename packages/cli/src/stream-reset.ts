/**
 * A stream's `reset` for people: after `expired`, the events retention pruned between the resume position
 * `after` and `oldest`, the oldest seq the log holds in full (those a type's own, longer retention kept still
 * arrive); after `ahead`, that the position was past the log's end, which `after` is.
 */
export function resetNote(reason: string, after: number, oldest?: number): string {
  if (reason === 'expired' && oldest !== undefined && oldest > after + 1) {
    const pruned = oldest === after + 2 ? `event #${after + 1} was` : `events #${after + 1}–#${oldest - 1} were`;
    return `Lost to retention: ${pruned} pruned before this stream got them (any a longer retention of their type kept still arrive); going on from #${oldest}`;
  }
  if (reason === 'expired') return `The stream could not resume after #${after}: the log no longer holds what came next (expired); going on with what it kept`;
  if (reason === 'ahead') return `The stream could not resume: its position is past the end of the log (ahead; a new database?); going on after #${after}, the log's end`;
  return `The stream could not resume where it was (${reason}); going on after #${after}`;
}
