// Accessibility helpers shared by the page's scripts: tab lists as the WAI-ARIA Authoring
// Practices "Tabs" pattern (roles, aria-selected following the .active class, arrow keys),
// help and error text linked to their inputs (aria-describedby), invalid fields marked
// (aria-invalid following .field.invalid), and one polite live region for announcements. The
// step-by-step status lines are not live regions (they change every step); job state changes
// are announced instead. Forms and tabs added later get the same by following the conventions.
'use strict';

// Makes `list` a tab list of `tabs` (buttons); panelOf(tab) is the element each one shows.
// Whatever code toggles a tab's .active class, aria-selected and the roving tabindex follow
// (one Tab stop for the list); Left/Right (wrapping), Home and End move and activate (click).
function wireTabs(list, tabs, panelOf) {
  list.setAttribute('role', 'tablist');
  const sync = () => {
    for (const t of tabs) {
      const on = t.classList.contains('active');
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
    }
  };
  for (const [i, t] of tabs.entries()) {
    t.setAttribute('role', 'tab');
    if (!t.id) t.id = t.dataset.tab ? `tabbtn-${t.dataset.tab}` : `${list.id || 'tablist'}-tab-${i}`;  // #tabbtn-train
    const panel = panelOf(t);
    if (panel) {
      t.setAttribute('aria-controls', panel.id);
      panel.setAttribute('role', 'tabpanel');
      panel.setAttribute('aria-labelledby', t.id);
    }
    new MutationObserver(sync).observe(t, { attributes: true, attributeFilter: ['class'] });
  }
  list.addEventListener('keydown', e => {
    const usable = tabs.filter(t => !t.hidden && !t.disabled);
    const at = usable.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: usable.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = usable[(to + usable.length) % usable.length];
    next.focus();
    next.click();
  });
  sync();
}

// Links each .field's help (<small>) and error (.field-error) to its input, select or
// textarea through aria-describedby, giving them ids where they have none. Idempotent.
function linkFieldDescriptions(root) {
  for (const box of root.querySelectorAll('.field')) {
    const control = box.querySelector('input:not([type=hidden]), select, textarea');
    if (!control || !control.id) continue;
    const ids = (control.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    for (const [sel, suffix] of [['small', 'help'], ['.field-error', 'error']]) {
      const d = box.querySelector(sel);
      if (!d) continue;
      if (!d.id) d.id = `${control.id}-${suffix}`;
      if (!ids.includes(d.id)) ids.push(d.id);
    }
    if (ids.length) control.setAttribute('aria-describedby', ids.join(' '));
  }
}

// aria-invalid="true" on the control of every .field.invalid under root, now and later.
function followInvalidFields(root) {
  const mark = box => {
    const control = box.querySelector('input:not([type=hidden]), select, textarea');
    if (!control) return;
    if (box.classList.contains('invalid')) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  };
  for (const box of root.querySelectorAll('.field')) mark(box);
  new MutationObserver(changes => {
    for (const c of changes) if (c.target.matches('.field')) mark(c.target);
  }).observe(root, { attributes: true, attributeFilter: ['class'], subtree: true });
}

// Says `text` through the page's polite live region (#announcer). The region is emptied
// first and filled a moment later, so the same text twice is announced twice; of several
// calls within that moment the last one is said.
let announceTimer = 0;
function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { region.textContent = text; }, 100);
}
