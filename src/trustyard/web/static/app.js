// Progressive enhancement only: every page works without this script.
// - [data-copy=ID] buttons copy the value of the element ID to the clipboard.
// - form[data-confirm] asks before submitting (deleting users, teams, grants, ...).
// - [data-refresh=URL][data-active] elements are replaced by the HTML at URL every two seconds (progress panels).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.value).then(done, () => { source.select(); });
  } else {
    source.select();
    document.execCommand("copy");
    done();
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

setInterval(() => {
  for (const panel of document.querySelectorAll("[data-refresh][data-active]")) {
    fetch(panel.dataset.refresh, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => { if (html) panel.outerHTML = html; })
      .catch(() => {});
  }
}, 2000);
