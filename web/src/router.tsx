// The route tree: one module per page under pages/; pages added later (terminals, volumes, usage...)
// register here and in layout/nav.ts.
import type { QueryClient } from "@tanstack/react-query";
import {
  createRootRoute,
  createRoute,
  createRouter,
  lazyRouteComponent,
  Outlet,
  redirect,
} from "@tanstack/react-router";

import { getSession } from "./auth/session";
import { Layout } from "./layout/Layout";
import { AlertsPage } from "./pages/Alerts";
import { AuditPage, parseAuditSearch } from "./pages/Audit";
import { NodesPage } from "./pages/Nodes";
import { NotFoundPage } from "./pages/NotFound";
import { OverviewPage } from "./pages/Overview";
import { SignInPage } from "./pages/SignIn";
import { SubmitPage } from "./pages/Submit";
import { TokensPage } from "./pages/Tokens";
import { UsagePage } from "./pages/Usage";
import { UsersPage } from "./pages/Users";
import type { VolumesSearch } from "./pages/Volumes";
import { WorkloadDetailPage } from "./pages/WorkloadDetail";
import { WorkloadsPage, type WorkloadsSearch } from "./pages/Workloads";
import { WorkspacesPage } from "./pages/Workspaces";

const rootRoute = createRootRoute({ component: Outlet, notFoundComponent: NotFoundPage });

export const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/sign-in",
  validateSearch: (search: Record<string, unknown>): { next?: string; sso_error?: string } => ({
    ...(typeof search.next === "string" ? { next: search.next } : {}),
    // why "Sign in with SSO" failed, when the server sends the browser back here
    ...(typeof search.sso_error === "string" ? { sso_error: search.sso_error } : {}),
  }),
  component: SignInPage,
});

const appRoute = createRoute({
  getParentRoute: () => rootRoute,
  id: "app",
  beforeLoad: ({ location }) => {
    if (!getSession()) throw redirect({ to: "/sign-in", search: { next: location.href } });
  },
  component: Layout,
});

const page = (path: string, component: () => JSX.Element) =>
  createRoute({ getParentRoute: () => appRoute, path, component });

export const workloadsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/workloads",
  validateSearch: (search: Record<string, unknown>): WorkloadsSearch => ({
    workspace: typeof search.workspace === "string" ? search.workspace : undefined,
    state: typeof search.state === "string" ? search.state : undefined,
    kind: typeof search.kind === "string" ? search.kind : undefined,
    owner: typeof search.owner === "string" ? search.owner : undefined,
  }),
  component: WorkloadsPage,
});

export const auditRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/audit",
  validateSearch: parseAuditSearch,
  component: AuditPage,
});

export const workloadRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/workloads/$workloadId",
  component: WorkloadDetailPage,
});

export const volumesRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/volumes",
  validateSearch: (search: Record<string, unknown>): VolumesSearch => ({
    workspace: typeof search.workspace === "string" ? search.workspace : undefined,
    volume: typeof search.volume === "string" ? search.volume : undefined,
    path: typeof search.path === "string" ? search.path : undefined,
  }),
  // loaded when first visited: the upload client is not part of the first page
  component: lazyRouteComponent(() => import("./pages/Volumes"), "VolumesPage"),
});

const routeTree = rootRoute.addChildren([
  signInRoute,
  appRoute.addChildren([
    page("/", OverviewPage),
    workloadsRoute,
    page("/submit", SubmitPage),
    workloadRoute,
    page("/nodes", NodesPage),
    page("/workspaces", WorkspacesPage),
    volumesRoute,
    page("/users", UsersPage),
    page("/tokens", TokensPage),
    page("/usage", UsagePage),
    auditRoute,
    page("/alerts", AlertsPage),
  ]),
]);

export function createAppRouter(queryClient: QueryClient) {
  return createRouter({ routeTree, context: { queryClient }, defaultPreload: "intent" });
}

declare module "@tanstack/react-router" {
  interface Register {
    router: ReturnType<typeof createAppRouter>;
  }
}
