// The run page's management controls (docs/dashboard.md "Run page"): the name, tags and notes
// edited in place (PATCH /runs/{e}/{p}/{id}), Stop for a live run (POST .../state: what
// `runyard runs stop` does, so the run's process learns it from its stop poll or, for a wandb
// client, from the file stream's `stopped` answer) and Delete after a confirmation that names
// the run and what goes with it (DELETE ..., first as a dry run). Every request disables the
// controls until it answers; a refusal (401/403 of the key, 404 of a run deleted meanwhile, 409
// of a running run) is shown under them, never dropped. The sweep page's controls are the model.

import { ApiError, deleteRun, get, runPath, stopRun, updateRun, type Run, type RunDeletion, type RunUpdate } from "../api";
import { fmtBytes, h, hashFor, isLive } from "../util";
import "./runedit.css";

/** The run's `failure` after a stop from here (the wandb client and `run.stop_reason` see it). */
export const STOP_REASON = "stopped from runyard (the dashboard)";

export interface RunEditor {
  /** the run's name (h1) with its Rename button, for the page's head */
  title: HTMLElement;
  /** tags, notes, Stop, Delete and the status line */
  bar: HTMLElement;
  /** a fresher read of the run (the page's live poll): redraws what is not being edited */
  update(run: Run): void;
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

/** What to do about a refusal, after the server's own message. */
function hint(err: unknown): string {
  if (!(err instanceof ApiError)) return "";
  if (err.status === 401) return " Press API key in the top bar and paste a key of this server.";
  if (err.status === 403) return " Change the key with API key in the top bar.";
  if (err.status === 404) return " It may have been deleted meanwhile: reload the page.";
  return "";
}

export function runEditor(initial: Run, onChange: (run: Run) => void): RunEditor {
  let run = initial;
  let busy = false;
  let editingName = false;
  let editingNotes = false;
  const path = () => `${run.entity}/${run.project}/${run.run_id}`;

  const title = h("div.runtitle");
  const tagsBox = h("div#run-tags.runedit-row", { role: "group", "aria-label": "Tags" });
  const notesBox = h("div#run-notes.runedit-row", { role: "group", "aria-label": "Notes" });
  const actions = h("div#run-actions.controls", { role: "group", "aria-label": "Run controls" });
  const status = h("div#run-edit-status", { role: "status", "aria-live": "polite" });
  const bar = h("div.runedit", null, tagsBox, notesBox, actions, status);

  /** Every control of the editor, enabled or not (a request in flight disables them all). */
  function setBusy(on: boolean): void {
    busy = on;
    bar.setAttribute("aria-busy", String(on));
    title.setAttribute("aria-busy", String(on));
    for (const el of [...title.querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLTextAreaElement>("button, input, textarea"), ...bar.querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLTextAreaElement>("button, input, textarea")]) {
      if (on) {
        if (!el.disabled) el.dataset.busyDisabled = "true";
        el.disabled = true;
      } else if (el.dataset.busyDisabled) {
        delete el.dataset.busyDisabled;
        el.disabled = false;
      }
    }
  }

  function say(text: string): void {
    status.replaceChildren(h("span.runedit-ok", null, text));
  }

  function fail(what: string, err: unknown): void {
    const msg = (err instanceof Error ? err.message : String(err)).replace(/\.\s*$/, "");
    status.replaceChildren(h("div.error#run-edit-error", { role: "alert" }, `Could not ${what}: ${msg}.${hint(err)}`));
  }

  /** One request: the controls disabled while it is in flight, its refusal shown. */
  async function request<T>(what: string, send: () => Promise<T>): Promise<T | null> {
    if (busy) return null;
    status.replaceChildren(h("span.muted", null, "Sending…"));
    setBusy(true);
    try {
      return await send();
    } catch (err) {
      fail(what, err);
      return null;
    } finally {
      setBusy(false);
    }
  }

  async function save(what: string, changes: RunUpdate, done: string): Promise<boolean> {
    const updated = await request(what, () => updateRun(run.entity, run.project, run.run_id, changes));
    if (!updated) return false;
    run = updated;
    editingName = editingNotes = false;
    draw();
    say(done);
    onChange(run);
    return true;
  }

  // -- the name -------------------------------------------------------------------------------

  function drawTitle(): void {
    if (editingName) return;
    title.replaceChildren(
      h("h1#run-name", null, run.name),
      h("button#run-rename.edit", { type: "button", title: "Rename the run", "aria-label": "Rename the run", onclick: startRename }, "✎ Rename"),
    );
  }

  function startRename(): void {
    editingName = true;
    const input = h("input#run-name-input", { type: "text", value: run.name, maxlength: 256, "aria-label": "Run name", required: true, size: Math.max(20, run.name.length + 4) });
    const inline = h("span.error-inline#run-name-error", { "aria-live": "polite" });
    const cancel = (): void => {
      editingName = false;
      drawTitle();
    };
    const form = h(
      "form#run-rename-form.runedit-inline",
      { "aria-label": "Rename the run" },
      input,
      h("button#run-name-save", { type: "submit" }, "Save"),
      h("button#run-name-cancel", { type: "button", onclick: cancel }, "Cancel"),
      inline,
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) {
        inline.textContent = "A run needs a name.";
        return;
      }
      if (name === run.name) return cancel();
      void save("rename the run", { name }, `Renamed to ${name}.`);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") cancel();
    });
    title.replaceChildren(form);
    input.focus();
    input.select();
  }

  // -- tags -----------------------------------------------------------------------------------

  function drawTags(): void {
    const input = h("input#run-tag-input", { type: "text", placeholder: "add a tag", "aria-label": "New tag (commas separate several)", maxlength: 256, size: 14 });
    const add = (): void => {
      const fresh = input.value.split(",").map((t) => t.trim()).filter((t) => t && !run.tags.includes(t));
      if (!fresh.length) {
        input.value = "";
        return;
      }
      void save("add the tag", { tags: [...run.tags, ...new Set(fresh)] }, `Tagged ${fresh.join(", ")}.`);
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        add();
      }
    });
    tagsBox.replaceChildren(
      h("span.runedit-label", null, "Tags"),
      ...run.tags.map((tag) =>
        h(
          "span.tag.tag-edit",
          { "data-tag": tag },
          tag,
          h("button.tag-remove", { type: "button", title: `Remove the tag ${tag}`, "aria-label": `Remove the tag ${tag}`, onclick: () => void save("remove the tag", { tags: run.tags.filter((t) => t !== tag) }, `Removed the tag ${tag}.`) }, "×"),
        ),
      ),
      ...(run.tags.length ? [] : [h("span.muted", null, "none")]),
      input,
      h("button#run-tag-add", { type: "button", onclick: add }, "Add"),
    );
  }

  // -- notes ----------------------------------------------------------------------------------

  function drawNotes(): void {
    if (editingNotes) return;
    notesBox.replaceChildren(
      h("span.runedit-label", null, "Notes"),
      run.notes ? h("span#run-notes-text.notes", null, run.notes) : h("span#run-notes-text.muted", null, "none"),
      h("button#run-notes-edit.edit", { type: "button", onclick: startNotes }, run.notes ? "Edit notes" : "Add notes"),
    );
  }

  function startNotes(): void {
    editingNotes = true;
    const area = h("textarea#run-notes-input", { rows: 3, cols: 60, "aria-label": "Notes" });
    area.value = run.notes ?? "";
    const cancel = (): void => {
      editingNotes = false;
      drawNotes();
    };
    const submit = (): void => {
      const text = area.value.trim() ? area.value : null;
      if (text === run.notes) return cancel();
      void save("save the notes", { notes: text }, text === null ? "Notes cleared." : "Notes saved.");
    };
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") cancel();
      else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit();
    });
    notesBox.replaceChildren(
      h("label.runedit-label", { for: "run-notes-input" }, "Notes"),
      area,
      h("span.runedit-inline", null, h("button#run-notes-save", { type: "button", onclick: submit }, "Save"), h("button#run-notes-cancel", { type: "button", onclick: cancel }, "Cancel")),
    );
    area.focus();
  }

  // -- stop and delete ------------------------------------------------------------------------

  async function stop(): Promise<void> {
    if (!confirm(`Stop run "${run.name}" (${path()})? It ends as stopped; its process is told on its next check.`)) return;
    const answer = await request("stop the run", () => stopRun(run.entity, run.project, run.run_id, STOP_REASON));
    if (!answer) return;
    const fresh = await request("read the run again", () => get<Run>(runPath(run.entity, run.project, run.run_id)));
    if (fresh) run = fresh;
    draw();
    say(answer.changed ? "Stopped: its process is told on its next check (run.should_stop; a wandb client is interrupted)." : `The run had already ended (${run.state}): nothing to stop.`);
    onChange(run);
  }

  async function remove(): Promise<void> {
    // a dry run first: the question says what goes (the server refuses a running run here)
    const plan = await request<RunDeletion>("delete the run", () => deleteRun(run.entity, run.project, run.run_id, true));
    if (!plan) return;
    status.replaceChildren();
    const what = [plural(plan.history_rows, "step"), "console output", `${plural(plan.files, "file")} (${fmtBytes(plan.file_bytes)})`].join(", ");
    if (!confirm(`Delete run "${run.name}" (${path()})?\n\nIts ${what} and system metrics go with it. This cannot be undone.`)) {
      say("Nothing deleted.");
      return;
    }
    const done = await request<RunDeletion>("delete the run", () => deleteRun(run.entity, run.project, run.run_id));
    if (!done) return;
    location.hash = hashFor(["p", run.entity, run.project, "runs"]);
  }

  function drawActions(): void {
    actions.replaceChildren(
      ...(isLive(run) ? [h("button#run-stop", { type: "button", title: "End the run as stopped: its process is told on its next check", onclick: () => void stop() }, "Stop")] : []),
      h("button#run-delete.danger", { type: "button", title: "Delete the run with its history and files (asks first)", onclick: () => void remove() }, "Delete"),
    );
  }

  function draw(): void {
    drawTitle();
    drawTags();
    drawNotes();
    drawActions();
    if (busy) setBusy(true);
  }

  draw();
  return {
    title,
    bar,
    update(fresh: Run): void {
      run = fresh;
      if (busy) return;
      drawTitle();
      drawNotes();
      drawActions();
      // keep a tag being typed
      const typing = tagsBox.querySelector<HTMLInputElement>("#run-tag-input");
      if (!typing || (!typing.value && document.activeElement !== typing)) drawTags();
    },
  };
}
