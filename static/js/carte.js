/* The map of the PVD communes (templates/carte/includes/points.html).
 *
 * Reads its settings from the data- attributes of #pvd-carte (no inline script: CSP),
 * fetches the GeoJSON of the user's perimeter and draws the communes as clustered points
 * coloured by their convention-cadre; a point opens the beneficiary's page. On the map page,
 * it also draws the fiches action (carte/fiches.py) at their communes, as squares whose
 * popup gives the fiche's title, maturity, cost and link. Clusters are grey: the legend's
 * colours belong to the convention-cadre's states. The départements are drawn by the server
 * (templates/carte/includes/choroplethe.html). Without a tile URL the background stays plain.
 *
 * The map opens on metropolitan France; buttons under it (data-bounds) show each overseas
 * département. Leaflet's own texts are put in French.
 */
(function () {
  "use strict";

  if (typeof L === "undefined") return;

  var ETATS = {
    signee: "#18753c",
    en_cours: "#ffca00",
    aucune: "#ffffff",
    terminee: "#929292",
  };
  // As carte/geo.py's VUES["metropole"], which the buttons under the map carry.
  var METROPOLE = L.latLngBounds([[41.3, -5.2], [51.1, 9.6]]);

  function text(tag, value, className) {
    var element = document.createElement(tag);
    element.textContent = value;
    if (className) element.className = className;
    return element;
  }

  function bounds(value) {
    var n = value.split(",").map(Number);
    return L.latLngBounds([[n[0], n[1]], [n[2], n[3]]]);
  }

  // Grey clusters, counted: the legend's colours stay for the convention-cadre's states.
  function clusters(className) {
    return L.markerClusterGroup({
      showCoverageOnHover: false,
      maxClusterRadius: 40,
      iconCreateFunction: function (cluster) {
        var n = cluster.getChildCount();
        return L.divIcon({
          html: "<span>" + n + "</span>",
          className: "marker-cluster pvd-carte__groupe " + className,
          iconSize: L.point(36, 36),
        });
      },
    });
  }

  // A fiche's popup: its title, status, cost and link, fetched when opened (the map's data
  // holds only ids, maturities and places, to stay short for the whole country).
  function popup(id, data, marker) {
    var box = text("p", "Chargement de la fiche…", "fr-mb-0");
    fetch(data.popup.replace("/0.json", "/" + id + ".json"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (fiche) {
        var content = document.createElement("div");
        var title = document.createElement("p");
        title.className = "fr-mb-1v";
        var link = text("a", fiche.titre, "pvd-carte__lien");
        link.href = fiche.url;
        var strong = document.createElement("strong");
        strong.appendChild(link);
        title.appendChild(strong);
        content.appendChild(title);
        content.appendChild(text("p", "Maturité : " + fiche.maturite + " ; avancement : " + fiche.avancement, "fr-mb-1v"));
        content.appendChild(text("p", "Coût : " + fiche.cout, "fr-mb-0"));
        marker.setPopupContent(content);
      })
      .catch(function () {
        box.textContent = "La fiche n’a pas pu être chargée.";
      });
    return box;
  }

  // The map's data (carte/fiches.py): each commune once, with the gaps between the ids of
  // its fiches and the index of each one's maturity.
  function drawFiches(map, data, control) {
    var layer = clusters("pvd-carte__groupe--fiches");
    data.lieux.forEach(function (lieu) {
      var id = 0;
      lieu[3].forEach(function (ecart, i) {
        id += ecart;
        var fiche = id;
        var maturite = data.maturites[Number(lieu[4].charAt(i))];
        var marker = L.marker([lieu[0], lieu[1]], {
          icon: L.divIcon({ className: "pvd-carte__fiche", iconSize: L.point(14, 14) }),
          title: "Fiche action (" + maturite + ") — " + lieu[2],
          alt: "Fiche action (" + maturite + ") — " + lieu[2],
          keyboard: true,
        });
        marker.bindPopup(function () {
          return popup(fiche, data, marker);
        });
        layer.addLayer(marker);
      });
    });
    layer.addTo(map);
    control.addOverlay(layer, "Fiches action (" + data.nb_fiches + ")");
  }

  function french(map) {
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" title="Bibliothèque de cartes interactives Leaflet">Leaflet</a>',
    );
    L.control.zoom({ zoomInTitle: "Zoom avant", zoomOutTitle: "Zoom arrière", position: "topleft" }).addTo(map);
    map.on("popupopen", function (event) {
      var close = event.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (close) {
        close.setAttribute("aria-label", "Fermer");
        close.setAttribute("title", "Fermer");
      }
    });
  }

  function draw(element, data) {
    // maxZoom on the map itself: the cluster layer needs one even without a tile layer.
    var map = L.map(element, { zoomSnap: 0.5, minZoom: 2, maxZoom: 18, zoomControl: false });
    french(map);
    var tileUrl = element.dataset.tileUrl;
    if (tileUrl) {
      L.tileLayer(tileUrl, {
        attribution: element.dataset.tileAttribution || "",
        maxZoom: 18,
      }).addTo(map);
    }
    var communes = clusters("pvd-carte__groupe--communes");
    var points = [];
    data.features.forEach(function (feature) {
      var p = feature.properties;
      var latlng = L.latLng(feature.geometry.coordinates[1], feature.geometry.coordinates[0]);
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
      points.push(latlng);
    });
    // The view first (the cluster layer needs the map's centre and zoom): the points in
    // metropolitan France, or all of them when none is there (an overseas perimeter).
    var metropole = points.filter(function (latlng) {
      return METROPOLE.contains(latlng);
    });
    var shown = metropole.length ? metropole : points;
    if (shown.length) {
      map.fitBounds(L.latLngBounds(shown), { padding: [20, 20], maxZoom: 11 });
    } else {
      map.fitBounds(METROPOLE);
    }
    communes.addTo(map);
    var control = L.control.layers(null, { Communes: communes }, { collapsed: false }).addTo(map);
    views(element, map);
    if (element.dataset.fichesUrl) {
      fetch(element.dataset.fichesUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (fiches) {
          drawFiches(map, fiches, control);
          element.dataset.fiches = String(fiches.nb_fiches);
          element.dataset.state = "ready";
        })
        .catch(function (error) {
          if (window.console) window.console.error("Carte, fiches :", error);
          element.dataset.state = "error";
        });
    } else {
      element.dataset.state = "ready";
    }
  }

  function views(element, map) {
    var list = element.parentNode.querySelector(".pvd-carte__vues");
    if (!list) return;
    list.hidden = false;
    list.querySelectorAll("[data-bounds]").forEach(function (button) {
      button.addEventListener("click", function () {
        map.fitBounds(bounds(button.dataset.bounds));
      });
    });
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
