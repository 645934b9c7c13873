import '../src/herald-portal.js';

// The token comes in the fragment (`/portal#token=hp_…`), which no request carries; take it out of the address bar.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? sessionStorage.getItem('herald-portal-token') ?? '';
if (token) sessionStorage.setItem('herald-portal-token', token);
history.replaceState(null, '', location.pathname + location.search);
const element = document.createElement('herald-portal');
element.baseUrl = location.origin + location.pathname.replace(/\/portal\/?$/, '');
element.token = token;
document.body.append(element);
