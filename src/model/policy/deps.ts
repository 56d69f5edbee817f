// The one door from src/model/policy to the rest of the pure core. The layer rule in
// eslint.config.js spells "src/model may import ./ and ../common/" as a regex written for files one
// level deep, so from this subfolder it refuses ../../common/ and ../ (src/model itself) too,
// though both are what src/model may use.
// Until the rule learns nested model folders, the imports it misjudges are all here, each
// exempted with the reason; every other policy module imports only ./ files.
// eslint-disable-next-line no-restricted-imports -- src/common is the layer src/model may use; the rule's regex predates nested model folders
export { InvalidObjectError } from '../../common/errors.ts';
// eslint-disable-next-line no-restricted-imports -- as above: pure IP/CIDR helpers of src/common
export {
  cidrContains,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  type Cidr,
  type IpAddress,
} from '../../common/ip.ts';
// eslint-disable-next-line no-restricted-imports -- a sibling module of src/model; the same rule's regex
export { ObjectErrors } from '../object-errors.ts';
