// A small WebGL2 view of a decoded surface: the mesh shaded from the field's normals, the key spheres as a
// translucent overlay, orbit with the mouse (drag), zoom with the wheel. No framework: three.js alone would be
// several times the page's whole download.

import { CAMERA, eyeOf, projectionMatrix, viewMatrix } from "./camera.js";

export const BACKGROUND = [1, 1, 1];
const SURFACE = [0.55, 0.66, 0.82];
const SHELL_ALPHA = 0.3;

const MESH_VERTEX = `#version 300 es
in vec3 position;
in vec3 normal;
uniform mat4 view;
uniform mat4 projection;
out vec3 viewNormal;
void main() {
  viewNormal = mat3(view) * normal;
  gl_Position = projection * view * vec4(position, 1.0);
}`;

const MESH_FRAGMENT = `#version 300 es
precision highp float;
in vec3 viewNormal;
uniform vec3 colour;
uniform float alpha;
out vec4 fragment;
void main() {
  vec3 n = normalize(viewNormal);
  float light = 0.25 + 0.75 * abs(dot(n, normalize(vec3(0.3, 0.4, 1.0))));
  fragment = vec4(colour * light, alpha);
}`;

const SPHERE_VERTEX = `#version 300 es
in vec3 position;
in vec4 sphere;
uniform mat4 view;
uniform mat4 projection;
out vec3 viewNormal;
void main() {
  viewNormal = mat3(view) * position;
  gl_Position = projection * view * vec4(sphere.xyz + sphere.w * position, 1.0);
}`;

const SPHERE_FRAGMENT = `#version 300 es
precision highp float;
in vec3 viewNormal;
out vec4 fragment;
void main() {
  float light = 0.25 + 0.75 * abs(dot(normalize(viewNormal), normalize(vec3(0.3, 0.4, 1.0))));
  fragment = vec4(vec3(0.95, 0.55, 0.2) * light, 1.0);
}`;

function program(gl, vertexSource, fragmentSource) {
  const compile = (type, source) => {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(shader)}`);
    return shader;
  };
  const result = gl.createProgram();
  gl.attachShader(result, compile(gl.VERTEX_SHADER, vertexSource));
  gl.attachShader(result, compile(gl.FRAGMENT_SHADER, fragmentSource));
  gl.linkProgram(result);
  if (!gl.getProgramParameter(result, gl.LINK_STATUS)) throw new Error(`shader program: ${gl.getProgramInfoLog(result)}`);
  return result;
}

/** An icosphere-like unit sphere (a subdivided octahedron): flat vertex triples for gl.TRIANGLES. */
function unitSphere(subdivisions = 3) {
  let triangles = [];
  const octahedron = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, 0, -1]];
  for (const [a, b, c] of [[0, 1, 2], [1, 3, 2], [3, 4, 2], [4, 0, 2], [1, 0, 5], [3, 1, 5], [4, 3, 5], [0, 4, 5]]) {
    triangles.push([octahedron[a], octahedron[b], octahedron[c]]);
  }
  const unit = (v) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  for (let s = 0; s < subdivisions; s++) {
    const finer = [];
    for (const [a, b, c] of triangles) {
      const ab = unit(a.map((x, i) => x + b[i]));
      const bc = unit(b.map((x, i) => x + c[i]));
      const ca = unit(c.map((x, i) => x + a[i]));
      finer.push([a, ab, ca], [ab, b, bc], [ca, bc, c], [ab, bc, ca]);
    }
    triangles = finer;
  }
  return Float32Array.from(triangles.flat(2));
}

/** A viewer on `canvas`; throws if the browser has no WebGL2. */
export function createViewer(canvas) {
  const gl = canvas.getContext("webgl2", { antialias: true, preserveDrawingBuffer: true });
  if (!gl) throw new Error("this browser has no WebGL2, which the viewer needs");
  const meshProgram = program(gl, MESH_VERTEX, MESH_FRAGMENT);
  const sphereProgram = program(gl, SPHERE_VERTEX, SPHERE_FRAGMENT);
  const orbit = { ...CAMERA };
  const state = { mesh: null, spheres: null, showSpheres: false };

  const meshArray = gl.createVertexArray();
  const buffers = { position: gl.createBuffer(), normal: gl.createBuffer(), index: gl.createBuffer() };
  const sphereArray = gl.createVertexArray();
  const sphereShape = unitSphere();
  const sphereBuffers = { shape: gl.createBuffer(), instances: gl.createBuffer() };
  gl.bindVertexArray(sphereArray);
  gl.bindBuffer(gl.ARRAY_BUFFER, sphereBuffers.shape);
  gl.bufferData(gl.ARRAY_BUFFER, sphereShape, gl.STATIC_DRAW);
  const spherePosition = gl.getAttribLocation(sphereProgram, "position");
  gl.enableVertexAttribArray(spherePosition);
  gl.vertexAttribPointer(spherePosition, 3, gl.FLOAT, false, 0, 0);
  gl.bindBuffer(gl.ARRAY_BUFFER, sphereBuffers.instances);
  const sphereAttribute = gl.getAttribLocation(sphereProgram, "sphere");
  gl.enableVertexAttribArray(sphereAttribute);
  gl.vertexAttribPointer(sphereAttribute, 4, gl.FLOAT, false, 0, 0);
  gl.vertexAttribDivisor(sphereAttribute, 1);
  gl.bindVertexArray(null);

  const attribute = (name, buffer, data) => {
    const location = gl.getAttribLocation(meshProgram, name);
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(location);
    gl.vertexAttribPointer(location, 3, gl.FLOAT, false, 0, 0);
  };

  function render() {
    const width = Math.max(1, Math.round(canvas.clientWidth * (window.devicePixelRatio || 1)));
    const height = Math.max(1, Math.round(canvas.clientHeight * (window.devicePixelRatio || 1)));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    gl.viewport(0, 0, width, height);
    gl.clearColor(...BACKGROUND, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    const view = viewMatrix(eyeOf(orbit));
    const projection = projectionMatrix(orbit.fov, width / height, orbit.near, orbit.far);
    gl.enable(gl.DEPTH_TEST);
    gl.disable(gl.CULL_FACE);
    // With the key spheres on, they are drawn opaque and the surface over them at SHELL_ALPHA: they lie inside it.
    const spheres = state.showSpheres && state.spheres;
    if (spheres) {
      gl.useProgram(sphereProgram);
      gl.uniformMatrix4fv(gl.getUniformLocation(sphereProgram, "view"), false, view);
      gl.uniformMatrix4fv(gl.getUniformLocation(sphereProgram, "projection"), false, projection);
      gl.bindVertexArray(sphereArray);
      gl.drawArraysInstanced(gl.TRIANGLES, 0, sphereShape.length / 3, state.spheres);
    }
    if (state.mesh) {
      gl.useProgram(meshProgram);
      gl.uniformMatrix4fv(gl.getUniformLocation(meshProgram, "view"), false, view);
      gl.uniformMatrix4fv(gl.getUniformLocation(meshProgram, "projection"), false, projection);
      gl.uniform3fv(gl.getUniformLocation(meshProgram, "colour"), SURFACE);
      gl.uniform1f(gl.getUniformLocation(meshProgram, "alpha"), spheres ? SHELL_ALPHA : 1);
      if (spheres) {
        gl.enable(gl.BLEND);
        gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
        gl.depthMask(false);
      }
      gl.bindVertexArray(meshArray);
      gl.drawElements(gl.TRIANGLES, state.mesh.count, gl.UNSIGNED_INT, 0);
      gl.depthMask(true);
      gl.disable(gl.BLEND);
    }
    gl.bindVertexArray(null);
  }

  let pending = false;
  const requestRender = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
    });
  };

  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    orbit.azimuth -= (event.clientX - drag.x) * 0.4;
    orbit.elevation = Math.max(-89, Math.min(89, orbit.elevation + (event.clientY - drag.y) * 0.4));
    drag = { x: event.clientX, y: event.clientY };
    requestRender();
  });
  canvas.addEventListener("pointerup", () => {
    drag = null;
  });
  canvas.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      orbit.distance = Math.max(0.5, Math.min(20, orbit.distance * Math.exp(event.deltaY * 0.001)));
      requestRender();
    },
    { passive: false },
  );
  window.addEventListener("resize", requestRender);

  return {
    /** Show a surface: {positions, normals: Float32Array (3V), indices: Uint32Array (3F)} in the normalized frame. */
    setMesh({ positions, normals, indices }) {
      gl.bindVertexArray(meshArray);
      attribute("position", buffers.position, positions);
      attribute("normal", buffers.normal, normals);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buffers.index);
      gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, indices, gl.STATIC_DRAW);
      gl.bindVertexArray(null);
      state.mesh = { count: indices.length };
    },
    /** The key spheres to overlay: Float32Array of (x, y, z, r) rows. */
    setSpheres(spheres) {
      gl.bindBuffer(gl.ARRAY_BUFFER, sphereBuffers.instances);
      gl.bufferData(gl.ARRAY_BUFFER, spheres, gl.STATIC_DRAW);
      state.spheres = spheres.length / 4;
    },
    showSpheres(show) {
      state.showSpheres = show;
      requestRender();
    },
    clear() {
      state.mesh = null;
      state.spheres = null;
      render();
    },
    /** Milliseconds per frame of `frames` frames drawn one after another, orbiting once around the shape
     * (each waited for by reading a pixel back: gl.finish() need not wait in a browser). */
    orbitTiming(frames = 60) {
      const pixel = new Uint8Array(4);
      const start = performance.now();
      for (let i = 0; i < frames; i++) {
        orbit.azimuth += 360 / frames;
        render();
        gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
      }
      return (performance.now() - start) / frames;
    },
    resetView() {
      Object.assign(orbit, CAMERA);
      requestRender();
    },
    render,
  };
}
