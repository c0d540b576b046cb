/**
 * Where the page's token comes from: `?token=` in the address (then removed from it), else
 * this tab's session storage, else this browser's local storage (only when the user asked to
 * be remembered), else the token form.
 * @module token
 */

const KEY = "tailhub.token";

/** Takes the token out of the page URL, if it carries one, and stores it for this tab. */
export function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return null;
  url.searchParams.delete("token");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  if (token) sessionStorage.setItem(KEY, token);
  return token || null;
}

/** The stored token, or null. */
export function storedToken() {
  try {
    return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || null;
  } catch {
    return null;
  }
}

/**
 * Keeps a token for this tab, and for this browser when `remember` is set.
 * @param {string} token
 * @param {boolean} remember
 */
export function saveToken(token, remember) {
  sessionStorage.setItem(KEY, token);
  if (remember) localStorage.setItem(KEY, token);
  else localStorage.removeItem(KEY);
}

/** Forgets the token everywhere it was kept. */
export function forgetToken() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

/**
 * Shows the token form and resolves with what the user entered, or with null when the user
 * cancelled (only offered when `cancellable`: a token is already in use).
 * @param {HTMLFormElement} form contains `#token-input`, `#token-remember`, `#token-error`,
 *   `#token-cancel`
 * @param {{problem?: string, cancellable?: boolean}} [options] `problem`: why the form is
 *   shown again (a refused token)
 * @returns {Promise<{token: string, remember: boolean} | null>}
 */
export function askForToken(form, { problem, cancellable = false } = {}) {
  const input = /** @type {HTMLInputElement} */ (form.querySelector("#token-input"));
  const remember = /** @type {HTMLInputElement} */ (form.querySelector("#token-remember"));
  const error = /** @type {HTMLElement} */ (form.querySelector("#token-error"));
  const cancel = /** @type {HTMLButtonElement} */ (form.querySelector("#token-cancel"));
  error.textContent = problem ?? "";
  error.hidden = !problem;
  input.setAttribute("aria-invalid", String(Boolean(problem)));
  cancel.hidden = !cancellable;
  form.hidden = false;
  input.value = "";
  input.focus();
  return new Promise((resolve) => {
    /** @param {{token: string, remember: boolean} | null} answer */
    const finish = (answer) => {
      form.removeEventListener("submit", submit);
      form.removeEventListener("keydown", escape);
      cancel.removeEventListener("click", dismiss);
      form.hidden = true;
      resolve(answer);
    };
    /** @param {SubmitEvent} event */
    const submit = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        error.textContent = "Enter the hub's access token.";
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        return;
      }
      finish({ token, remember: remember.checked });
    };
    const dismiss = () => finish(null);
    /** @param {KeyboardEvent} event */
    const escape = (event) => {
      if (event.key === "Escape" && cancellable) dismiss();
    };
    form.addEventListener("submit", submit);
    form.addEventListener("keydown", escape);
    cancel.addEventListener("click", dismiss);
  });
}
