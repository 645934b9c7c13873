/** A GitHub-flavoured markdown table; numeric-looking columns are right-aligned. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const numeric = headers.map((_, column) => rows.length > 0 && rows.every((row) => /^[-~≈]?[\d.,]+/.test(row[column] ?? '')));
  const line = (cells: readonly string[]) => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`;
  return [
    line(headers),
    `|${numeric.map((right) => (right ? '---:' : '---')).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}
