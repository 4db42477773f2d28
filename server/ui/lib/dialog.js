import { html, useEffect, useRef } from '../vendor/htm-preact.mjs';

/**
 * A modal confirmation (the native dialog element: focus moves into it, Escape cancels). `ask`
 * is { title, text, confirm, run } or null; the dialog names exactly what will change.
 */
export function Confirm({ ask, onClose }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (ask && !d.open) d.showModal();
    if (!ask && d.open) d.close();
  }, [ask]);
  const done = async (ok) => {
    const a = ask;
    onClose();
    if (ok && a) await a.run();
  };
  return html`<dialog ref=${ref} class="confirm" aria-labelledby="confirm-title" onCancel=${(e) => (e.preventDefault(), done(false))}>
    ${ask &&
    html`<h2 id="confirm-title">${ask.title}</h2>
      <p class="confirm-text">${ask.text}</p>
      <div class="actions">
        <button type="button" class="danger" onClick=${() => done(true)}>${ask.confirm}</button>
        <button type="button" autofocus onClick=${() => done(false)}>Cancel</button>
      </div>`}
  </dialog>`;
}

/** An error line (role=alert) for a failed call, with the API's code. */
export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.code ? html`<code>${error.code}</code> ` : ''}${error.message}</p>`;
}
