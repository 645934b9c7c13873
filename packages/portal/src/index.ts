export { type PortalOptions, portal, portalAppDirectory } from './portal-app.js';
