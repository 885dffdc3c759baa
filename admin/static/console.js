// Console behaviour, loaded from this site only (the CSP allows no inline script).
(function () {
  'use strict';

  // "Select all" checkboxes of list pages.
  document.querySelectorAll('.console-toggle-all').forEach(function (toggle) {
    toggle.addEventListener('change', function () {
      document.querySelectorAll('input.console-row').forEach(function (box) { box.checked = toggle.checked; });
    });
  });

  // The campaign builder's live audience estimate.
  var form = document.getElementById('campaign-form');
  if (!form) { return; }
  var output = form.querySelector('[data-testid="estimate"]');
  var fields = ['category', 'audience_type', 'topic', 'platforms', 'filter_locales', 'filter_time_zones',
                'last_active_within_days', 'app_version_min', 'app_version_max', 'properties'];
  var timer = null;
  var latest = 0;

  function estimate() {
    var data = new FormData(form);
    var query = new URLSearchParams();
    fields.forEach(function (name) {
      data.getAll(name).forEach(function (value) { query.append(name, value); });
    });
    var ticket = ++latest;
    output.textContent = '…';
    fetch(form.dataset.estimateUrl + '?' + query.toString(), {credentials: 'same-origin'})
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (ticket !== latest) { return; }  // an older answer arriving late
        if (body.error) {
          output.textContent = body.error;
        } else {
          output.textContent = body.devices + ' devices, ' + body.users + ' users' +
            (body.opted_out_devices ? ' (' + body.opted_out_devices + ' devices opted out)' : '');
        }
      })
      .catch(function () { if (ticket === latest) { output.textContent = 'estimate unavailable'; } });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(estimate, 300);
  }

  fields.forEach(function (name) {
    form.querySelectorAll('[name="' + name + '"]').forEach(function (input) {
      input.addEventListener('input', soon);
      input.addEventListener('change', soon);
    });
  });
  document.getElementById('estimate-button').addEventListener('click', estimate);
  estimate();
}());
