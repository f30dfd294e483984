// The panel kinds the workspace knows, in the order they claim automatic panels. Kinds are
// registered by panels/index.ts; nothing else needs to change to add one.

import type { PanelKind } from "./types";

const kinds = new Map<string, PanelKind>();

export function registerPanel(kind: PanelKind): void {
  if (kinds.has(kind.kind)) throw new Error(`panel kind ${kind.kind} is registered twice`);
  kinds.set(kind.kind, kind);
}

export function panelKind(kind: string): PanelKind | undefined {
  return kinds.get(kind);
}

export function panelKinds(): PanelKind[] {
  return [...kinds.values()];
}
