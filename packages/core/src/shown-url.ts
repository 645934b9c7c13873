/** `url` with its credentials hidden (`postgres://***@db.example.com/herald`), to say in an error or a log line. */
export function shownUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
