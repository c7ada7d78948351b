// The route tree: one module per page under pages/; pages added later (terminals, volumes, usage...)
// register here and in layout/nav.ts.
import type { QueryClient } from "@tanstack/react-query";
import { createRootRoute, createRoute, createRouter, Outlet, redirect } from "@tanstack/react-router";

import { getSession } from "./auth/session";
import { Layout } from "./layout/Layout";
import { AuditPage } from "./pages/Audit";
import { NodesPage } from "./pages/Nodes";
import { NotFoundPage } from "./pages/NotFound";
import { OverviewPage } from "./pages/Overview";
import { SignInPage } from "./pages/SignIn";
import { SubmitPage } from "./pages/Submit";
import { TokensPage } from "./pages/Tokens";
import { UsagePage } from "./pages/Usage";
import { UsersPage } from "./pages/Users";
import { WorkloadDetailPage } from "./pages/WorkloadDetail";
import { WorkloadsPage, type WorkloadsSearch } from "./pages/Workloads";
import { WorkspacesPage } from "./pages/Workspaces";

const rootRoute = createRootRoute({ component: Outlet, notFoundComponent: NotFoundPage });

export const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/sign-in",
  validateSearch: (search: Record<string, unknown>): { next?: string } =>
    typeof search.next === "string" ? { next: search.next } : {},
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

export const workloadRoute = createRoute({
  getParentRoute: () => appRoute,
  path: "/workloads/$workloadId",
  component: WorkloadDetailPage,
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
    page("/users", UsersPage),
    page("/tokens", TokensPage),
    page("/usage", UsagePage),
    page("/audit", AuditPage),
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
