// Signing out ends the session at the server, and for an SSO session at the IdP too (RP-initiated
// logout): the server answers with the IdP's end-session URL, and the browser goes there.
import { api } from "../api/client";
import { endSession, getSession } from "./session";

/** Where the browser goes after signing out: the IdP's end-session page, or null to stay in the console. */
export async function signOut(): Promise<string | null> {
  let logoutUrl: string | null = null;
  if (getSession()) {
    try {
      const { data } = await api.POST("/api/v1/auth/logout");
      logoutUrl = data?.logout_url ?? null;
    } catch {
      // The server is unreachable: forget the session here anyway; it ends at its idle lifetime.
    }
  }
  endSession();
  return logoutUrl;
}
