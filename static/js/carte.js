/* The map of the PVD communes (templates/carte/includes/points.html).
 *
 * Reads its settings from the data- attributes of #pvd-carte (no inline script: CSP),
 * fetches the GeoJSON of the user's perimeter and draws the communes as clustered points
 * coloured by their convention-cadre; a point opens the beneficiary's page. The
 * départements are drawn by the server (templates/carte/includes/choroplethe.html), with
 * their real shapes: the GeoJSON's département features are not drawn here. Without a tile
 * URL the background stays plain.
 */
(function () {
  "use strict";

  var ETATS = {
    signee: "#18753c",
    en_cours: "#ffca00",
    aucune: "#ffffff",
    terminee: "#929292",
  };
  var FRANCE = [[41.3, -5.2], [51.1, 9.6]];

  function text(tag, value, className) {
    var element = document.createElement(tag);
    element.textContent = value;
    if (className) element.className = className;
    return element;
  }

  function draw(element, data) {
    // maxZoom on the map itself: the cluster layer needs one even without a tile layer.
    var map = L.map(element, { zoomSnap: 0.5, minZoom: 2, maxZoom: 18 });
    var tileUrl = element.dataset.tileUrl;
    if (tileUrl) {
      L.tileLayer(tileUrl, {
        attribution: element.dataset.tileAttribution || "",
        maxZoom: 18,
      }).addTo(map);
    }
    var communes = L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 40 });
    var bounds = [];
    data.features.forEach(function (feature) {
      var p = feature.properties;
      var latlng = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
      if (p.couche !== "commune") return;
      var marker = L.circleMarker(latlng, {
        radius: 7,
        color: "#161616",
        weight: 1,
        fillColor: ETATS[p.etat] || ETATS.aucune,
        fillOpacity: 1,
        className: "pvd-carte__commune pvd-carte__commune--" + p.code,
      });
      marker.bindTooltip(p.nom + " — " + p.beneficiaire);
      marker.on("click", function () {
        window.location.assign(p.url);
      });
      communes.addLayer(marker);
      bounds.push(latlng);
    });
    // The view first: the cluster layer needs the map's centre and zoom.
    if (bounds.length) {
      map.fitBounds(bounds, { padding: [20, 20], maxZoom: 11 });
    } else {
      map.fitBounds(FRANCE);
    }
    communes.addTo(map);
    element.dataset.state = "ready";
  }

  function init() {
    var element = document.getElementById("pvd-carte");
    if (!element || typeof L === "undefined") return;
    element.textContent = "";
    fetch(element.dataset.geojsonUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/geo+json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        draw(element, data);
      })
      .catch(function (error) {
        if (window.console) window.console.error("Carte :", error);
        element.appendChild(
          text("p", "La carte n’a pas pu être chargée ; les tableaux ci-dessous donnent la même information.", "fr-p-2w"),
        );
        element.dataset.state = "error";
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
