/** A path of URL segments, each of the characters a path may hold unencoded (RFC 3986 pchar, minus `%`). */
const basePathFormat = /^(\/[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+$/;

/** Checks a base path: `''` (the root) or `/events`, `/api/events`: no trailing slash, query or spaces. */
export function checkBasePath(basePath: string): string {
  if (basePath === '' || basePathFormat.test(basePath)) return basePath;
  throw new Error(`basePath must be '' (the root) or a path such as '/events', with no trailing slash, query or spaces; not "${basePath}"`);
}

/** The part of a request's URL below `basePath` (`/v1/ws?x=1` of `/events/v1/ws?x=1`), or undefined when it is not below it. */
export function urlBelow(url: string, basePath: string): string | undefined {
  if (basePath === '') return url;
  if (!url.startsWith(basePath)) return undefined;
  const rest = url.slice(basePath.length);
  if (rest === '') return '/';
  if (rest.startsWith('/')) return rest;
  if (rest.startsWith('?')) return `/${rest}`;
  return undefined;
}
